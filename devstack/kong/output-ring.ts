/** Keeps the last `limit` characters a process printed, for error messages when it misbehaves. */
export class OutputRing {
  private chunks: string[] = [];
  private length = 0;

  constructor(private readonly limit = 64 * 1024) {}

  push(chunk: string): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    while (this.length > this.limit && this.chunks.length > 1) this.length -= (this.chunks.shift() as string).length;
  }

  text(): string {
    const all = this.chunks.join("");
    return all.length > this.limit ? all.slice(all.length - this.limit) : all;
  }
}
