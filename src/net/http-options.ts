// Network settings every HTTP-speaking source shares: timeouts, TLS trust, proxy and User-Agent.

export interface HttpOptions {
  /** Sent on every request; vendors' CDNs rate-limit by it, so it is configurable. */
  userAgent: string;
  /** TCP + TLS connect timeout. */
  connectTimeoutMs: number;
  /** Time to the response headers. */
  headersTimeoutMs: number;
  /** Longest silence between two chunks of a body. */
  idleTimeoutMs: number;
  /** Longest one file transfer may take, start to end of body (checked as chunks arrive; a silent stall is the idle timeout's). */
  totalTimeoutMs: number;
  /** Extra CA certificates (PEM) trusted besides the system's. TLS verification is never turned off. */
  ca?: string;
  /** Proxy URL without credentials, and the Proxy-Authorization value when it needs one. */
  proxy?: { url: string; authorization?: string };
  /** Honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY when no explicit proxy is given. */
  useEnvProxy: boolean;
  /** Most connections open to one host (or proxy) at once; further requests wait for one. Unbounded when unset. */
  connectionsPerHost?: number;
}

export const DEFAULT_HTTP_OPTIONS: HttpOptions = {
  userAgent: "update-mirror",
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  totalTimeoutMs: 3_600_000,
  useEnvProxy: true,
};
