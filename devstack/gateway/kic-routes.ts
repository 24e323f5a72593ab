import { kicTags, makeRoute, makeService, type KongRoute, type KongService } from "../kong";

/** A gateway path and the Kubernetes Service behind it. */
export interface RouteSpec {
  /** The Kong Route's path prefix (stripped before proxying, as the Route's strip_path says). */
  path: string;
  /** The Kubernetes Service the Kong Service stands for. */
  namespace: string;
  name: string;
  /** Its port; default 80. */
  port?: number;
  /** Where the gateway sends the requests (see GatewayRoute.upstream); default the local stack's echo upstream. */
  upstream?: string | (() => string);
}

export interface KongEntities {
  service: KongService;
  route: KongRoute;
}

/**
 * The Kong Service and Route that Kong Ingress Controller makes for an Ingress rule to a Kubernetes Service: the
 * names and tags are what the sidecar derives the Kubernetes labels from, so they must be KIC's.
 */
export function kicEntities(spec: RouteSpec): KongEntities {
  const port = spec.port ?? 80;
  const service = makeService({
    name: `${spec.namespace}.${spec.name}.${port}`,
    host: `${spec.name}.${spec.namespace}.${port}.svc`,
    port,
    tags: kicTags(spec.name, spec.namespace, "Service"),
  });
  const route = makeRoute(service, {
    name: `${spec.namespace}.${spec.name}.${spec.name}.kong.example.com.${port}`,
    paths: [spec.path],
    tags: kicTags(spec.name, spec.namespace, "Ingress", "networking.k8s.io"),
  });
  return { service, route };
}
