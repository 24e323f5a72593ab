import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

const MIN_TOKEN_LENGTH = 16;

/** The shared ingest token, kept only as its digest. */
export class IngestToken {
  private constructor(private readonly digest: Buffer) {}

  /** Reads the token from a file (a mounted Secret, typically); surrounding whitespace is ignored. */
  static fromFile(path: string): IngestToken {
    let text: string;
    try {
      text = readFileSync(path, "utf8").trim();
    } catch (err) {
      throw new Error(`cannot read the ingest token file ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (text.length < MIN_TOKEN_LENGTH)
      throw new Error(`the ingest token in ${path} is shorter than ${MIN_TOKEN_LENGTH} characters`);
    if (/\s/.test(text)) throw new Error(`the ingest token in ${path} contains whitespace`);
    return new IngestToken(sha256(text));
  }

  /**
   * Compares in constant time: both sides are hashed first, so neither the token's length nor its
   * content leaks through timing.
   */
  accepts(authorization: string | undefined): boolean {
    const m = /^Bearer (\S+)$/.exec(authorization ?? "");
    return m !== null && timingSafeEqual(sha256(m[1]), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
