// Answering GET and HEAD for one representation: preconditions, ranges and headers decided first, then the body from memory or a descriptor.
import { close } from "node:fs";
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { evaluatePreconditions, httpDate, ifRangeAllows, type Validators } from "./conditional.js";
import type { Content } from "./content.js";
import { type StreamBudget, streamFile } from "./file-stream.js";
import { parseRange } from "./ranges.js";

/** What the server knows about a representation before touching its bytes. */
export interface Representation extends Validators {
  size: number;
  contentType: string;
  cacheControl: string;
}

/** The answer decided from headers alone: a body-less status, or which bytes to send. */
export type ResponsePlan =
  | { status: 304 | 412 | 416; headers: OutgoingHttpHeaders }
  /** Send bytes `start` to `start + length - 1`. */
  | { status: 200 | 206; headers: OutgoingHttpHeaders; start: number; length: number };

/** Headers every file-like response carries (nosniff is on every response the server sends). */
function validatorHeaders(rep: Representation): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { "x-content-type-options": "nosniff", etag: rep.etag, "cache-control": rep.cacheControl };
  if (rep.lastModifiedMs !== undefined) headers["last-modified"] = httpDate(rep.lastModifiedMs);
  return headers;
}

/**
 * Decides status and headers (RFC 9110): 412/304 from the preconditions; then, when If-Range allows,
 * a single satisfiable range gives 206 with Content-Range, an unsatisfiable one 416 with
 * `Content-Range: bytes *\/size`, several ranges the whole body (200). Content-Length is always set
 * on 200/206/416 (and 0 on 412); a 304 carries the validators only. Plans are shared: callers must
 * not change them (writeHead only reads the headers).
 */
export function planResponse(requestHeaders: IncomingHttpHeaders, rep: Representation, nowMs: number): ResponsePlan {
  if (isPlain(requestHeaders)) {
    let plan = WHOLE.get(rep);
    if (plan === undefined) {
      plan = decide(requestHeaders, rep, nowMs);
      WHOLE.set(rep, plan);
    }
    return plan;
  }
  return decide(requestHeaders, rep, nowMs);
}

// The answer to a request without preconditions or a range depends on the representation alone:
// decided once per representation (the server keeps one per listed file and snapshot), not per request.
const WHOLE = new WeakMap<Representation, ResponsePlan>();

/** No header that could make the answer anything but the whole representation. */
function isPlain(headers: IncomingHttpHeaders): boolean {
  return (
    headers.range === undefined &&
    headers["if-none-match"] === undefined &&
    headers["if-modified-since"] === undefined &&
    headers["if-match"] === undefined &&
    headers["if-unmodified-since"] === undefined
  );
}

function decide(requestHeaders: IncomingHttpHeaders, rep: Representation, nowMs: number): ResponsePlan {
  const outcome = evaluatePreconditions(requestHeaders, rep);
  if (outcome === "not-modified") return { status: 304, headers: validatorHeaders(rep) };
  if (outcome === "failed") return { status: 412, headers: { "x-content-type-options": "nosniff", "content-length": 0 } };
  const headers = validatorHeaders(rep);
  headers["accept-ranges"] = "bytes";
  const rangeHeader = requestHeaders.range;
  const range = rangeHeader !== undefined && ifRangeAllows(requestHeaders, rep, nowMs) ? parseRange(rangeHeader, rep.size) : { kind: "none" as const };
  if (range.kind === "unsatisfiable") {
    headers["content-range"] = `bytes */${rep.size}`;
    headers["content-length"] = 0;
    return { status: 416, headers };
  }
  headers["content-type"] = rep.contentType;
  if (range.kind === "single") {
    const length = range.end - range.start + 1;
    headers["content-range"] = `bytes ${range.start}-${range.end}/${rep.size}`;
    headers["content-length"] = length;
    return { status: 206, headers, start: range.start, length };
  }
  headers["content-length"] = rep.size;
  return { status: 200, headers, start: 0, length: rep.size };
}

const BODY = Symbol("body bytes");
type Counted = ServerResponse & { [BODY]?: number | (() => number) };

/** Records the body bytes of `res`, or how to count them when the response closes (a cut stream counts what it sent). */
export function countBody(res: ServerResponse, count: number | (() => number)): void {
  (res as Counted)[BODY] = count;
}

/** Body bytes handed to the socket for `res` so far (0 when no body was sent). */
export function bodyBytes(res: ServerResponse): number {
  const count = (res as Counted)[BODY];
  return typeof count === "function" ? count() : (count ?? 0);
}

function endWithBody(res: ServerResponse, plan: Extract<ResponsePlan, { status: 200 | 206 }>, data: Buffer): void {
  const body = plan.start === 0 && plan.length === data.length ? data : data.subarray(plan.start, plan.start + plan.length);
  countBody(res, body.length);
  res.end(body);
}

/** Writes a planned 200/206 from bytes in memory, synchronously: the hot path for small files. */
export function sendBuffer(res: ServerResponse, plan: Extract<ResponsePlan, { status: 200 | 206 }>, data: Buffer, head: boolean): void {
  res.writeHead(plan.status, plan.headers);
  if (head || plan.length === 0) res.end();
  else endWithBody(res, plan, data);
}

/**
 * Writes a planned 200/206 with `content` (already known to hold the right bytes); resolves when the
 * response is over. For HEAD, or when `content` is undefined, only the headers are sent. A descriptor
 * is always closed, also when the client goes away mid-body. Body bytes are counted (see bodyBytes).
 */
export function sendPlanned(res: ServerResponse, plan: Extract<ResponsePlan, { status: 200 | 206 }>, content: Content | undefined, head: boolean, budget: StreamBudget): Promise<void> {
  res.writeHead(plan.status, plan.headers);
  if (head || content === undefined || plan.length === 0) {
    if (content?.kind === "fd") close(content.fd, () => undefined);
    res.end();
    return Promise.resolve();
  }
  if (content.kind === "buffer") {
    endWithBody(res, plan, content.data);
    return Promise.resolve();
  }
  let sent = 0;
  countBody(res, () => sent);
  return streamFile(res, content.fd, plan.start, plan.length, budget, (bytes) => {
    sent += bytes;
  });
}
