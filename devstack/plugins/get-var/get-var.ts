/**
 * A log handler that reads an nginx variable: Kong cannot answer that in its log timer (ngx.var raises there),
 * so the timer dies and the event never ends. Shows what the gateways do with a PDK call that fails in Kong.
 */
interface GetVarPdk {
  nginx: { getVar(name: string): Promise<unknown> };
}

export class Plugin {
  async log(kong: GetVarPdk): Promise<void> {
    await kong.nginx.getVar("remote_addr");
  }
}

export const Name = "get-var";
export const Version = "0.1.0";
export const Priority = 0;
export const Schema: unknown[] = [];
