// Builds the undici dispatcher for a run: direct, through an explicit proxy, or through the environment's proxy.
import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher, EnvHttpProxyAgent, ProxyAgent } from "undici";
import type { HttpOptions } from "./http-options.js";

/**
 * One dispatcher per run so connections are reused across files. Plain-HTTP requests through a
 * proxy use absolute-form GETs (proxyTunnel: false), since many proxies only allow CONNECT to 443;
 * HTTPS always tunnels. The CA goes to both the direct and the proxied TLS paths.
 */
export function createDispatcher(options: HttpOptions): Dispatcher {
  // A `ca` given to TLS replaces the system's roots; the extra CA is meant to be trusted besides them.
  const ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
  const connect = { timeout: options.connectTimeoutMs, ...(ca !== undefined && { ca }) };
  const requestTls = ca !== undefined ? { ca } : {};
  const connections = options.connectionsPerHost === undefined ? {} : { connections: options.connectionsPerHost };
  // Redirects are followed by the HTTP source itself (sources/http.ts), not by an interceptor.
  if (options.proxy) {
    return new ProxyAgent({
      uri: options.proxy.url,
      ...(options.proxy.authorization !== undefined && { token: options.proxy.authorization }),
      proxyTunnel: false,
      connect,
      requestTls,
      proxyTls: requestTls,
      ...connections,
    });
  }
  if (options.useEnvProxy && hasEnvProxy()) {
    return new EnvHttpProxyAgent({ connect, requestTls, proxyTls: requestTls, proxyTunnel: false, ...connections } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
  }
  return new Agent({ connect, ...connections });
}

function hasEnvProxy(): boolean {
  const env = process.env;
  return [env.http_proxy, env.HTTP_PROXY, env.https_proxy, env.HTTPS_PROXY].some((v) => v !== undefined && v !== "");
}
