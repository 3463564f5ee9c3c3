import { Session } from 'chdb';

/**
 * chDB sessions on one data folder, each running one query at a time. A session whose query
 * failed is closed and replaced before it runs another: measured here, chDB hands the part of
 * a result produced before an error (a result over `max_result_rows`, say) to the next query
 * of the same session — one analyst's rows in another's answer. One query per session and a
 * fresh session after every error keep each result its own.
 */
export class ChdbSessions {
  readonly #dir: string;
  readonly #setup: (session: Session) => void;
  readonly #idle: Session[] = [];
  readonly #waiting: Array<(session: Session) => void> = [];
  #open = 0;
  #closed = false;

  constructor(
    dir: string,
    readonly size: number,
    setup: (session: Session) => void = () => undefined,
  ) {
    this.#dir = dir;
    this.#setup = setup;
  }

  async query(sql: string, format: string): Promise<string> {
    const session = await this.#take();
    let failed = false;
    try {
      return (await session.queryAsync(sql, { format })).text();
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      this.#give(session, failed);
    }
  }

  close(): void {
    this.#closed = true;
    for (const session of this.#idle.splice(0)) session.close();
  }

  #take(): Promise<Session> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.#open < this.size) {
      this.#open += 1;
      return Promise.resolve(this.#create());
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  #give(session: Session, failed: boolean): void {
    let next = session;
    if (failed || this.#closed) {
      session.close();
      if (this.#closed) {
        this.#open -= 1;
        return;
      }
      next = this.#create();
    }
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) waiter(next);
    else this.#idle.push(next);
  }

  #create(): Session {
    const session = new Session(this.#dir);
    this.#setup(session);
    return session;
  }
}
