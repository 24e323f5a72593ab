# syntax=docker/dockerfile:1
#
# The kong-latency-exporter image: the upstream-latency plugin with kong-js-pluginserver, the latency-exporter
# sidecar and write-plugin-info.js, on distroless Node.js 20. Small base, non-root, no shell, runs with a
# read-only root filesystem (it writes only to the volumes it is given). The chart runs three containers from it
# in each Kong pod:
#   upstream-latency-info  node /opt/upstream-latency/bin/write-plugin-info.js --out ... -- node .../kong-js-pluginserver ... --dump-all-plugins
#   upstream-latency       node /opt/upstream-latency/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory /opt/upstream-latency/dist/plugin --kong-prefix ... --sock-name ...
#   latency-exporter       node /opt/upstream-latency/dist/lib/sidecar/cli.js --metrics-address ... (the default command)
#
# Build from the repository root (the build context must be the whole checkout):
#   docker build -f images/latency-exporter.Dockerfile -t registry.example.com/kong-latency-exporter:0.1.0 .
#   docker push registry.example.com/kong-latency-exporter:0.1.0
# then install the chart with --set image.repository=registry.example.com/kong-latency-exporter.
#
# Not built by this repository's CI (no Docker engine there). What CI does check: the paths below are those the
# chart renders (test/deploy/images.test.ts), and the rendered command lines start the real plugin server.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY wire ./wire
COPY plugin ./plugin
COPY sidecar ./sidecar
COPY images/write-plugin-info.js ./images/write-plugin-info.js
# Build, drop the development dependencies, then check that the plugin loads and dumps clean plugin info
# (the same check the init container makes before Kong starts).
RUN npm run build \
 && npm prune --omit=dev \
 && node images/write-plugin-info.js --out /tmp/check/upstream-latency.json --expect upstream-latency \
      -- node node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory /src/dist/plugin --dump-all-plugins

FROM gcr.io/distroless/nodejs${NODE_VERSION}-debian12:nonroot
WORKDIR /opt/upstream-latency
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/images/write-plugin-info.js ./bin/write-plugin-info.js
ENV NODE_ENV=production
# distroless "nonroot" is 65532; the chart runs the containers as Kong's uid 1000 (see values.yaml securityContext).
USER 65532:65532
EXPOSE 9542
ENTRYPOINT ["/nodejs/bin/node"]
CMD ["/opt/upstream-latency/dist/lib/sidecar/cli.js"]
