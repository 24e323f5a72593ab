import { parse } from "yaml";
import { GUIDE, readText } from "./paths";

/**
 * The YAML of the Kong Gateway Operator autoscaling guide (../shared/seed), block by block, as a user would
 * paste it: fenced ```yaml blocks, with the `echo '` ... `' | kubectl apply -f -` wrapping removed.
 */
export function guideYaml(): unknown[] {
  const text = readText(GUIDE);
  const blocks: unknown[] = [];
  const re = /```yaml\n([\s\S]*?)```/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    let body = m[1];
    body = body.replace(/^echo '\n/, "").replace(/'\s*\|\s*kubectl apply -f -\s*$/, "");
    blocks.push(parse(body));
  }
  return blocks;
}

type Obj = Record<string, unknown>;

export function guideObject(kind: string): Obj {
  const found = guideYaml().find((b) => typeof b === "object" && b !== null && (b as Obj).kind === kind);
  if (!found) throw new Error(`no ${kind} in the guide`);
  return found as Obj;
}

/** The guide's prometheus-adapter values (the block with `rules:`). */
export function guideAdapterValues(): { prometheus: { url: string }; rules: { default: boolean; custom: Obj[] } } {
  const found = guideYaml().find((b) => typeof b === "object" && b !== null && "rules" in (b as Obj));
  if (!found) throw new Error("no prometheus-adapter values in the guide");
  return found as never;
}
