import type { ServiceRef } from "../wire/payload";

/** How long a route- or service-scoped instance trusts the Service it looked up. */
export const SERVICE_CACHE_MS = 10_000;

/**
 * The Service of a route- or service-scoped instance, fixed for the instance's configuration; the expiry
 * bounds how long a renamed or retagged Service keeps its old labels.
 */
export class ServiceCache {
  private entry: { ref: ServiceRef; at: number } | undefined;

  /** The cached Service, if it was looked up less than SERVICE_CACHE_MS before `now` (epoch ms). */
  get(now: number): ServiceRef | undefined {
    return this.entry && now - this.entry.at < SERVICE_CACHE_MS ? this.entry.ref : undefined;
  }

  set(ref: ServiceRef, now: number): void {
    this.entry = { ref, at: now };
  }
}
