export { cjsonEncode } from "./cjson";
export { KongEmulator, ProtocolError, type EventTrace, type KongEmulatorOptions, type PluginEntity } from "./emulator";
export {
  answerPdkCall,
  API_DISABLED,
  type HeaderTable,
  type LogContext,
  type PdkAnswer,
  type PdkCall,
  type SavedLogContext,
  type StepMethod,
} from "./pdk-answers";
export {
  dumpAllPlugins,
  fixturePluginDir,
  PluginServer,
  PLUGIN_SERVER_BIN,
  REPO_ROOT,
  type DumpedPlugin,
  type DumpResult,
  type ExitStatus,
  type PluginServerOptions,
} from "./pluginserver";
export { RpcPool, type RpcPoolOptions, type RpcPoolStats } from "./pool";
export { RpcConnection, RpcPipelineError, RpcServerError, RpcTransportError } from "./rpc";
export {
  DEFAULT_WORKSPACE_ID,
  makeLogContext,
  makeRoute,
  makeService,
  type KongRoute,
  type KongService,
  type LogContextOptions,
  type RouteOptions,
  type ServiceOptions,
  kicTags,
} from "./serialize";
export { StartInstanceError, type InstanceChange, type PluginConf, type RunningInstance } from "./worker";
