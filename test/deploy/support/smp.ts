/**
 * The strategic merge patch Kong Gateway Operator applies to the Deployment it generates for a DataPlane
 * (pkg/utils/kubernetes/resources: ApplyDeploymentUserPatches -> StrategicMergePatchPodTemplateSpec), reduced
 * to what a pod template uses: maps merge recursively, and the lists below merge by their patch merge key
 * (k8s.io/api/core/v1 patchMergeKey tags); other lists are replaced.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  ports: "containerPort",
  imagePullSecrets: "name",
  tolerations: "key",
  hostAliases: "ip",
};

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function strategicMerge(base: unknown, patch: unknown, field = ""): unknown {
  if (isObj(base) && isObj(patch)) {
    const out: Obj = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = k in base ? strategicMerge(base[k], v, k) : structuredClone(v);
    }
    return out;
  }
  const key = MERGE_KEYS[field];
  if (key && Array.isArray(base) && Array.isArray(patch)) {
    const out = base.map((e) => structuredClone(e)) as Obj[];
    for (const p of patch as Obj[]) {
      const i = out.findIndex((e) => e[key] === p[key]);
      if (i >= 0) out[i] = strategicMerge(out[i], p, "") as Obj;
      else out.push(structuredClone(p));
    }
    return out;
  }
  return structuredClone(patch);
}

/**
 * What Kong Gateway Operator generates for a DataPlane before user patches (GenerateNewDeploymentForDataPlane and
 * GenerateDataPlaneContainer, with the env defaults of its KongDefaults), enough to apply our patch to.
 */
export function operatorDeployment(name: string, namespace: string): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: `dataplane-${name}-abcde`, namespace, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          restartPolicy: "Always",
          terminationGracePeriodSeconds: 30,
          volumes: [{ name: "cluster-certificate", secret: { secretName: `${name}-cert` } }],
          containers: [
            {
              name: "proxy",
              image: "kong/kong-gateway:3.9",
              imagePullPolicy: "IfNotPresent",
              lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", "kong quit"] } } },
              env: [
                { name: "KONG_CLUSTER_LISTEN", value: "off" },
                { name: "KONG_DATABASE", value: "off" },
                { name: "KONG_NGINX_WORKER_PROCESSES", value: "2" },
                { name: "KONG_PLUGINS", value: "bundled" },
                { name: "KONG_PORT_MAPS", value: "80:8000, 443:8443" },
                {
                  name: "KONG_PROXY_LISTEN",
                  value: "0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 ssl reuseport backlog=16384",
                },
                { name: "KONG_STATUS_LISTEN", value: "0.0.0.0:8100" },
              ],
              ports: [
                { name: "proxy", containerPort: 8000, protocol: "TCP" },
                { name: "proxy-ssl", containerPort: 8443, protocol: "TCP" },
                { name: "metrics", containerPort: 8100, protocol: "TCP" },
                { name: "admin-ssl", containerPort: 8444, protocol: "TCP" },
              ],
              readinessProbe: { httpGet: { path: "/status", port: 8100, scheme: "HTTP" }, periodSeconds: 10 },
              resources: { requests: { cpu: "100m", memory: "20Mi" }, limits: { cpu: "1000m", memory: "1000Mi" } },
              volumeMounts: [{ name: "cluster-certificate", mountPath: "/var/cluster-certificate", readOnly: true }],
            },
          ],
        },
      },
    },
  };
}
