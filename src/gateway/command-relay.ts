import { randomUUID } from 'node:crypto';
import type { Consumer } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaBus } from '../bus/kafka-bus.js';
import type { ConfigService } from '../config/config-changes.js';
import type { ConfigChange } from '../config/live-network.js';
import type { LiveCost } from '../sessions/process-batch.js';
import type { CommandResult } from './outbound.js';
import type { CommandRefusal, Gateway } from './server.js';

interface CommandRequest {
  readonly requestId: string;
  readonly chargerId: string;
  readonly action: string;
  readonly payload: object;
  readonly timeoutMs: number;
}

type CommandReply =
  | { readonly requestId: string; readonly claimed: true }
  | { readonly requestId: string; readonly outcome: CommandResult | CommandRefusal };

/** How long a request waits for a gateway to say it holds the charger. */
const CLAIM_TIMEOUT_MS = 3000;

/**
 * Distributed mode: engine-initiated calls reach the gateway process that holds the charger.
 * A request goes on the commands topic, which every gateway follows; the one holding the
 * connection claims it at once and answers with the result on the results topic, which every
 * requester follows. No claim within 3 s: the charger is offline everywhere.
 */
export class CommandRelay {
  readonly #bus: KafkaBus;
  readonly #log: Logger;
  readonly #waiting = new Map<
    string,
    { claimed: () => void; done: (outcome: CommandResult | CommandRefusal) => void }
  >();
  readonly #consumers: Consumer[] = [];

  private constructor(bus: KafkaBus, log: Logger) {
    this.#bus = bus;
    this.#log = log;
  }

  /** Follows the results topic (from now on), so that `request` can wait for answers. */
  static async open(bus: KafkaBus, log: Logger): Promise<CommandRelay> {
    const relay = new CommandRelay(bus, log);
    await relay.#follow(bus.topics.commandResults, (text) => {
      const reply = JSON.parse(text) as CommandReply;
      const waiter = relay.#waiting.get(reply.requestId);
      if (waiter === undefined) return;
      if ('claimed' in reply) waiter.claimed();
      else waiter.done(reply.outcome);
    });
    return relay;
  }

  /** Gateway side: carry out the requests for chargers this gateway holds. */
  async serve(gateway: Gateway): Promise<void> {
    await this.#follow(this.#bus.topics.commands, (text) => {
      const request = JSON.parse(text) as CommandRequest;
      if (!gateway.holds(request.chargerId)) return;
      this.#reply({ requestId: request.requestId, claimed: true });
      void Promise.resolve(
        gateway.command(request.chargerId, request.action, request.payload, request.timeoutMs),
      ).then((outcome) => this.#reply({ requestId: request.requestId, outcome }));
    });
  }

  /** Gateway side: the 2.0.1 transaction costs processors rated (R5.1). */
  async serveCosts(gateway: Gateway): Promise<void> {
    await this.#follow(this.#bus.topics.costs, (text) =>
      gateway.costsRated(JSON.parse(text) as LiveCost[]),
    );
  }

  /** Every process: configuration API changes, all of them from the start, then as they come. */
  async serveConfig(config: ConfigService): Promise<void> {
    await this.#follow(
      this.#bus.topics.config,
      (text) => config.heard(JSON.parse(text) as ConfigChange),
      true,
    );
  }

  /** Requester side: a call to a charger held by some gateway, anywhere. */
  request(
    chargerId: string,
    action: string,
    payload: object,
    timeoutMs: number,
  ): Promise<CommandResult | CommandRefusal> {
    const requestId = randomUUID();
    return new Promise((resolve) => {
      let doneTimer: NodeJS.Timeout | undefined;
      const finish = (outcome: CommandResult | CommandRefusal): void => {
        clearTimeout(claimTimer);
        clearTimeout(doneTimer);
        this.#waiting.delete(requestId);
        resolve(outcome);
      };
      const claimTimer = setTimeout(() => finish({ refused: 'offline' }), CLAIM_TIMEOUT_MS);
      this.#waiting.set(requestId, {
        claimed: () => {
          clearTimeout(claimTimer);
          // The gateway times the call out itself; this only guards against losing the gateway.
          doneTimer = setTimeout(
            () => finish({ status: 'disconnected', messageId: '', latencyMs: timeoutMs }),
            timeoutMs + 5000,
          );
        },
        done: finish,
      });
      const request: CommandRequest = { requestId, chargerId, action, payload, timeoutMs };
      this.#bus.record(this.#bus.topics.commands, chargerId, Buffer.from(JSON.stringify(request)));
    });
  }

  async close(): Promise<void> {
    for (const consumer of this.#consumers) await consumer.disconnect();
  }

  #reply(reply: CommandReply): void {
    this.#bus.record(
      this.#bus.topics.commandResults,
      reply.requestId,
      Buffer.from(JSON.stringify(reply)),
    );
  }

  /** A private consumer (its own group) reading a topic from its end, for broadcast. */
  async #follow(
    topic: string,
    onMessage: (text: string) => void,
    fromBeginning = false,
  ): Promise<void> {
    const consumer = this.#bus.kafka.consumer({
      groupId: `${topic}.${randomUUID()}`,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning });
    let joined!: () => void;
    const ready = new Promise<void>((r) => (joined = r));
    consumer.on(consumer.events.GROUP_JOIN, () => joined());
    await consumer.run({
      eachMessage: ({ message }) => {
        try {
          if (message.value !== null) onMessage(message.value.toString());
        } catch (error) {
          this.#log.warn({ topic, err: String(error) }, 'unreadable relay message skipped');
        }
        return Promise.resolve();
      },
    });
    await ready;
    this.#consumers.push(consumer);
  }
}
