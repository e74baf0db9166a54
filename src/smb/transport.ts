// The SMB2 transport: node-smb2's framing and NTLM encoders, with its reply handling replaced (interim replies, failures, credits).
import { createRequire } from "node:module";
import { S } from "./protocol.js";

// Why node-smb2 (pinned at 1.3.5): it is the only npm SMB client that speaks NTLMv2, which Samba and Windows
// require by default. We use only its transport (NetBIOS framing, message ids, packet (de)serialisation) and
// its NTLM message encoders; every file operation is issued and parsed here, because its own helpers corrupt
// reads on STATUS_PENDING, stop listings after one page, cannot replace on rename and print to stdout.
// Measured against Samba 4.17: /work/shared/research/stack-services.md §1.

type ClientModule = typeof import("node-smb2/dist/client/Client.js");
type NtlmModule = typeof import("node-smb2/dist/protocol/ntlm/util.js");
type LibClient = InstanceType<ClientModule["default"]>;
type LibRequest = Parameters<LibClient["send"]>[0];
export type LibResponse = Awaited<ReturnType<LibClient["send"]>>;

export interface Lib {
  Transport: new (host: string, options: { port: number; connectTimeout: number; requestTimeout: number }) => Transport;
  ntlm: NtlmModule;
}

/** The transport of one connection: node-smb2's Client with its reply handling replaced. */
export interface Transport extends LibClient {
  /** Rejects every request in flight with `err` and drops the socket. Idempotent. */
  fail(err: Error): void;
  failure: Error | undefined;
}

/** QUERY_INFO request and response (MS-SMB2 2.2.37, 2.2.38) in the library's structure notation; no input buffer is sent. */
const QUERY_INFO = {
  requestStructure: {
    structureSize: { type: Number, size: 2, defaultValue: 41 },
    infoType: { type: Number, size: 1 },
    fileInfoClass: { type: Number, size: 1 },
    outputBufferLength: { type: Number, size: 4, defaultValue: 0x10000 },
    inputBufferOffset: { type: Number, size: 2 },
    reserved: { type: Number, size: 2 },
    inputBufferLength: { type: Number, size: 4 },
    additionalInformation: { type: Number, size: 4 },
    flags: { type: Number, size: 4 },
    fileId: { type: String, encoding: "hex", size: 16 },
    // StructureSize 41 counts one byte of the (empty) variable part.
    padding: { type: Number, size: 1 },
  },
  responseStructure: {
    structureSize: { type: Number, size: 2 },
    outputBufferOffset: { type: Number, size: 2 },
    outputBufferLength: { type: Number, size: 4 },
    buffer: { type: Buffer, sizeFieldName: "outputBufferLength" },
  },
};

let loaded: Lib | undefined;
/** node-smb2 (and its moment-timezone) is loaded on first use, so runs without an SMB source do not pay for it. */
export function lib(): Lib {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const Base = (require("node-smb2/dist/client/Client.js") as ClientModule).default;
  const ntlm = require("node-smb2/dist/protocol/ntlm/util.js") as NtlmModule;
  const Response = (require("node-smb2/dist/protocol/smb2/Response.js") as { default: { parse(buffer: Buffer): LibResponse } }).default;
  // The library has no QUERY_INFO packet; its serializer finds packets by type name in this module.
  const packets = require("node-smb2/dist/protocol/smb2/packets/index.js") as Record<string, unknown>;
  if (!("QueryInfo" in packets)) Object.defineProperty(packets, "QueryInfo", { value: QUERY_INFO, enumerable: true });

  interface Pending {
    resolve: (response: LibResponse) => void;
    reject: (reason: unknown) => void;
    timer: NodeJS.Timeout;
    request: LibRequest;
  }

  class SmbTransport extends Base implements Transport {
    readonly pending = new Map<bigint, Pending>();
    failure: Error | undefined;

    constructor(host: string, options: { port: number; connectTimeout: number; requestTimeout: number }) {
      super(host, options);
      // The library joins every socket chunk onto what it holds, so a 1 MiB READ reply arriving in
      // hundreds of chunks was copied hundreds of times (9.5x the payload). Chunks are kept as they come
      // and joined once, when a whole message (NetBIOS length prefix) is there.
      const held: Buffer[] = [];
      let heldBytes = 0;
      this.onData = (data: Buffer) => {
        held.push(data);
        heldBytes += data.length;
        try {
          while (heldBytes >= 4) {
            const head = (held[0] as Buffer).length >= 4 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
            if (head.readUInt8(0) !== 0) throw new Error("not a NetBIOS session message");
            const need = 4 + head.readUInt32BE(0);
            if (heldBytes < need) break;
            const all = held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, heldBytes);
            const rest = all.subarray(need);
            held.length = 0;
            heldBytes = rest.length;
            if (rest.length > 0) held.push(rest);
            this.onResponse(Response.parse(all.subarray(4, need)));
          }
        } catch (err) {
          // A reply the library cannot parse would otherwise throw out of the socket's data handler.
          this.fail(new Error(`unreadable reply from the server: ${(err as Error).message}`, { cause: err }));
        }
      };
      // The library only console.error()s socket errors and never fails what is in flight.
      this.onError = (err: Error) => this.fail(err);
      this.onClose = () => this.fail(new Error("the server closed the connection"));
    }

    override async connect(): Promise<void> {
      try {
        await super.connect();
        // Requests are small and several are in flight: Nagle's algorithm would hold each behind the last one's ACK.
        this.socket.setNoDelay(true);
        // After the library's listeners are gone (a late error on a dropped socket) nothing may throw.
        this.socket.on("error", () => undefined);
      } finally {
        clearTimeout(this.connectTimeoutId);
      }
    }

    // A request charged N credits uses N message ids (MS-SMB2 3.2.4.1.5); the library advances by one.
    override createRequest(header: Parameters<LibClient["createRequest"]>[0] = {}, body: unknown = {}): LibRequest {
      const request = super.createRequest(header, body);
      const charge = header?.creditCharge ?? 1;
      if (charge > 1) this.nextMessageId += BigInt(charge - 1);
      return request;
    }

    override send(request: LibRequest): Promise<LibResponse> {
      if (this.failure) return Promise.reject(this.failure);
      if (!this.connected) return Promise.reject(new Error("not connected"));
      const id = request.header.messageId as bigint;
      return new Promise<LibResponse>((resolve, reject) => {
        const timer = setTimeout(() => this.fail(new Error(`no reply within ${this.requestTimeout} ms`)), this.requestTimeout);
        this.pending.set(id, { resolve, reject, timer, request });
        this.socket.write(request.serialize());
      });
    }

    override onResponse(response: LibResponse): void {
      const status = response.header.status as number;
      // STATUS_PENDING is an interim reply (the server went asynchronous, e.g. Samba's aio reads): the final
      // reply comes later under the same MessageId. The library resolved the request with the empty interim
      // body, which silently corrupted reads.
      if (status === S.PENDING) return;
      const id = response.header.messageId as bigint;
      const entry = this.pending.get(id);
      if (entry === undefined) return;
      this.pending.delete(id);
      clearTimeout(entry.timer);
      response.request = entry.request;
      if (status === S.SUCCESS || status === S.MORE_PROCESSING_REQUIRED) entry.resolve(response);
      else entry.reject(response);
    }

    fail(err: Error): void {
      this.failure ??= err;
      this.connected = false;
      for (const entry of this.pending.values()) {
        clearTimeout(entry.timer);
        entry.reject(this.failure);
      }
      this.pending.clear();
      this.socket?.destroy();
    }
  }

  loaded = { Transport: SmbTransport, ntlm };
  return loaded;
}

/** node-smb2 announces the NTLM version with console.log (stdout, which --json owns); the encoder is synchronous, so silence it just around the call. */
export function quietly<T>(fn: () => T): T {
  const log = console.log;
  console.log = () => undefined;
  try {
    return fn();
  } finally {
    console.log = log;
  }
}
