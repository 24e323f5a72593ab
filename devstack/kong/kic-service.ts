import { makeService, type KongService } from "./serialize";

/** A Kong Service named and tagged as Kong Ingress Controller makes it for default/<name>. */
export function kicService(name: string): KongService {
  return makeService({
    name: `default.${name}.80`,
    tags: [`k8s-name:${name}`, "k8s-namespace:default", "k8s-kind:Service", "k8s-version:v1"],
  });
}
