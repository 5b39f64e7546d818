/**
 * The one place loggers are made: Powertools Logger (JSON lines with level, message, timestamp,
 * service; in Lambda also cold_start, function_request_id and the correlation id), written to
 * stderr everywhere, so stdout stays clean for the CLI's `--json` output, the batch worker's
 * result line and EMF metrics. Lambda captures stderr like stdout.
 *
 * Level: the caller passes `config.logLevel` (AWS_LAMBDA_LOG_LEVEL > HEADSTART_LOG_LEVEL >
 * info); Powertools also applies AWS_LAMBDA_LOG_LEVEL itself, which agrees, and ignores
 * POWERTOOLS_LOG_LEVEL / LOG_LEVEL because a level is always given.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { type LogItem, Logger as PowertoolsLogger } from "@aws-lambda-powertools/logger";
import type { ConstructorOptions } from "@aws-lambda-powertools/logger/types";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type Logger = PowertoolsLogger;

type Write = (line: string) => void;
const toStderr: Write = (line) => process.stderr.write(line);

/** Powertools' documented extension point (`printLog` is protected): same JSON, our stream. */
class StreamLogger extends PowertoolsLogger {
  // Set after construction; the Powertools constructor already prints what it buffered.
  private write: Write | undefined;

  static create(options: ConstructorOptions, write: Write): StreamLogger {
    const logger = new StreamLogger(options);
    logger.write = write;
    return logger;
  }

  protected override printLog(_level: number, log: LogItem): void {
    log.prepareForPrint();
    (this.write ?? toStderr)(`${JSON.stringify(log.getAttributes(), this.getJsonReplacer())}\n`);
  }

  /** Children (`createChild`) write where their parent does. */
  protected override createLogger(options?: ConstructorOptions): StreamLogger {
    return StreamLogger.create(options ?? {}, this.write ?? toStderr);
  }
}

export function makeLogger(service: string, level: LogLevel, write: Write = toStderr): Logger {
  return StreamLogger.create({ serviceName: service, logLevel: level.toUpperCase() as "INFO" }, write);
}

/** The request being served: its correlation id, and the client's Idempotency-Key if it sent one. */
export interface RequestIds {
  correlationId: string;
  idempotencyKey?: string;
}

const requestScope = new AsyncLocalStorage<RequestIds>();

/** Runs `fn` as part of a request, so code below the API (train dispatch) can see its ids. */
export function withRequestIds<T>(ids: RequestIds, fn: () => T): T {
  return requestScope.run(ids, fn);
}

export function currentRequestIds(): RequestIds | undefined {
  return requestScope.getStore();
}
