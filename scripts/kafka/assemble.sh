#!/usr/bin/env bash
# Assemble the jars of a local Apache Kafka broker (KRaft) from Maven Central.
#
#   scripts/kafka/assemble.sh [DEST_DIR]
#
# DEST_DIR defaults to ${CHARGESTREAM_KAFKA_HOME:-$HOME/.cache/chargestream/kafka}. The jars go
# to DEST_DIR/libs; on success the absolute path of that folder is the only line on stdout
# (src/kafka/local-broker.ts reads it), everything else goes to stderr.
#
# Idempotent: DEST_DIR/libs/.assembled holds the sha256 of the pom it was built from; when it
# matches the current pom nothing is done (no Maven, no network). A changed pom rebuilds the
# folder from scratch so jars of two Kafka versions never share a classpath.
#
# Exit codes: 0 ok, 2 usage, 3 a required tool is missing, 4 Maven failed.
set -euo pipefail

fail() {
  local code=$1
  shift
  printf 'assemble.sh: %s\n' "$*" >&2
  exit "$code"
}

[[ $# -le 1 ]] || fail 2 "usage: $0 [DEST_DIR]"

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom="$script_dir/pom.xml"
[[ -f $pom ]] || fail 2 "pom not found at $pom"

dest=${1:-${CHARGESTREAM_KAFKA_HOME:-$HOME/.cache/chargestream/kafka}}
[[ -n $dest ]] || fail 2 "DEST_DIR is empty"
mkdir -p "$dest" || fail 2 "cannot create $dest"
dest=$(cd "$dest" && pwd)
libs="$dest/libs"
marker="$libs/.assembled"

if command -v sha256sum >/dev/null 2>&1; then
  pom_hash=$(sha256sum "$pom" | cut -d' ' -f1)
elif command -v shasum >/dev/null 2>&1; then
  pom_hash=$(shasum -a 256 "$pom" | cut -d' ' -f1)
else
  fail 3 "neither sha256sum nor shasum is installed"
fi

is_current() {
  [[ -f $marker ]] && [[ $(cat "$marker") == "$pom_hash" ]]
}

# Fast path before taking the lock: a warm cache costs one hash and one file read.
if is_current; then
  printf '%s\n' "$libs"
  exit 0
fi

# Test files running in parallel may all ask for the jars at once; one assembles, the others
# wait for it and then find the marker. flock is util-linux; without it we just go ahead.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dest/.assemble.lock"
  flock 9
  if is_current; then
    printf '%s\n' "$libs"
    exit 0
  fi
fi

command -v mvn >/dev/null 2>&1 || fail 3 "mvn not found on PATH; install Maven 3.6+ (Debian: apt-get install maven)"
command -v java >/dev/null 2>&1 || fail 3 "java not found on PATH; install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)"

# Build into a fresh folder and swap it in only when complete: an interrupted download never
# leaves a half-filled libs/ that the marker check could mistake for a finished one.
staging="$dest/libs.staging.$$"
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT

# Maven's own output goes to a log beside the jars and is shown only when it fails: a warm
# run prints nothing, a failing one shows the [ERROR] lines that say why.
mvn_log="$dest/assemble.log"
printf 'assemble.sh: downloading Kafka jars from Maven Central into %s\n' "$libs" >&2
if ! mvn -B --no-transfer-progress -Dstyle.color=never -f "$pom" \
  dependency:copy-dependencies \
  -DoutputDirectory="$staging" \
  -DincludeScope=runtime \
  >"$mvn_log" 2>&1; then
  tail -n 40 "$mvn_log" >&2
  fail 4 "Maven could not resolve the Kafka jars (pom: $pom, full log: $mvn_log); is Maven Central reachable?"
fi

compgen -G "$staging/kafka_2.13-*.jar" >/dev/null || fail 4 "Maven finished but kafka_2.13 is not among the copied jars in $staging"

printf '%s\n' "$pom_hash" >"$staging/.assembled"
# Two renames keep the moment without a libs/ folder as short as it can be; the old jars are
# deleted last (a broker already running from them keeps the files it has open).
old="$dest/libs.old.$$"
if [[ -e $libs ]]; then
  mv "$libs" "$old"
fi
mv "$staging" "$libs"
trap - EXIT
rm -rf "$old"

printf '%s\n' "$libs"
