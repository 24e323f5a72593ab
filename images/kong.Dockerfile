# syntax=docker/dockerfile:1
#
# Kong Gateway with Node.js 20 and the upstream-latency plugin installed, for the chart's pluginServer.mode=kongImage
# (and plain `docker run`): Kong starts kong-js-pluginserver itself (start_cmd) and queries it (query_cmd); the
# KONG_* settings of kong-config/kong-image/kong.env are baked in as ENV. The operator replaces KONG_PLUGINS with
# its own default, so the chart sets them on the proxy container as well.
#
# Build from the repository root (the build context must be the whole checkout):
#   docker build -f images/kong.Dockerfile -t registry.example.com/kong-upstream-latency:3.9 .
#   docker build -f images/kong.Dockerfile --build-arg KONG_IMAGE=kong:3.9 -t registry.example.com/kong-oss-upstream-latency:3.9 .
# then install the chart with --set pluginServer.mode=kongImage --set kong.image=registry.example.com/kong-upstream-latency:3.9
#
# The Kong base must be glibc-based (the official Ubuntu/Debian images are); Node.js is copied from the official
# node image. Not built by this repository's CI (no Docker engine there); test/deploy/images.test.ts checks the
# ENV below against kong-config/kong-image/kong.env and runs those command lines against the real plugin server.

ARG NODE_VERSION=20
ARG KONG_IMAGE=kong/kong-gateway:3.9

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY wire ./wire
COPY plugin ./plugin
COPY sidecar ./sidecar
COPY images/write-plugin-info.js ./images/write-plugin-info.js
RUN npm run build \
 && npm prune --omit=dev \
 && node images/write-plugin-info.js --out /tmp/check/upstream-latency.json --expect upstream-latency \
      -- node node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory /src/dist/plugin --dump-all-plugins

FROM node:${NODE_VERSION}-bookworm-slim AS node

FROM ${KONG_IMAGE}
USER root
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# Node.js needs libstdc++ and libgcc_s; install them only if the Kong base lacks them.
RUN if ! /usr/local/bin/node --version >/dev/null 2>&1; then \
      apt-get update \
      && apt-get install -y --no-install-recommends libstdc++6 libgcc-s1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && /usr/local/bin/node --version
COPY --from=build /src/package.json /opt/upstream-latency/package.json
COPY --from=build /src/node_modules /opt/upstream-latency/node_modules
COPY --from=build /src/dist /opt/upstream-latency/dist
# The socket directory (the chart mounts an emptyDir over it), writable by Kong's user, which runs the server.
RUN mkdir -p /upstream-latency \
 && chown kong:0 /upstream-latency \
 && chmod 0775 /upstream-latency \
 && /usr/local/bin/node /opt/upstream-latency/node_modules/kong-pdk/bin/kong-js-pluginserver \
      --plugins-directory /opt/upstream-latency/dist/plugin --dump-all-plugins \
    | /usr/local/bin/node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s);if(!Array.isArray(p)||p[0]?.Name!=="upstream-latency"){console.error("bad plugin info: "+s);process.exit(1)}})'
ENV KONG_PLUGINS="bundled,upstream-latency"
ENV KONG_PLUGINSERVER_NAMES="upstream-latency"
ENV KONG_PLUGINSERVER_UPSTREAM_LATENCY_SOCKET="/upstream-latency/upstream-latency.sock"
ENV KONG_PLUGINSERVER_UPSTREAM_LATENCY_START_CMD="/usr/local/bin/node /opt/upstream-latency/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory /opt/upstream-latency/dist/plugin --kong-prefix /upstream-latency --sock-name upstream-latency.sock"
ENV KONG_PLUGINSERVER_UPSTREAM_LATENCY_QUERY_CMD="/usr/local/bin/node /opt/upstream-latency/node_modules/kong-pdk/bin/kong-js-pluginserver --plugins-directory /opt/upstream-latency/dist/plugin --dump-all-plugins"
USER kong
