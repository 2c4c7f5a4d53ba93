# The prediction API (rps-api) in server mode, as a `FROM scratch` image: the binary,
# the C libraries it links, CA certificates, a non-root user, and (by default) the
# Production model baked in. Nothing is pulled from a registry, so it builds offline.
#
# The build context is made by `scripts/ci/image.sh build` (`make image`), which
# copies those files into rootfs/ and, for a baked image, fetches the model by alias
# from the registry and verifies it against its sha256 tag:
#
#   make image                                   # baked: serves with no network
#   make image IMAGE_MODEL=registry              # loads RPS_MODEL_NAME@RPS_MODEL_ALIAS at start
#
# The build argument RPS_MODEL_PATH picks the mode: the baked bundle's path, or empty
# to load from the registry at start (then pass MLFLOW_TRACKING_URI or RPS_STORE).
FROM scratch

ARG RPS_MODEL_PATH=/model/model.rpsb
ARG RPS_VERSION=dev

COPY rootfs/ /

ENV PORT=8080 \
    RPS_MODEL_PATH=${RPS_MODEL_PATH} \
    RPS_MODEL_CACHE=/tmp/rps-models \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

LABEL org.opencontainers.image.title="rps-api" \
      org.opencontainers.image.description="rps: real-time weather forecasts over HTTP" \
      org.opencontainers.image.version="${RPS_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/rps-api", "health"]
ENTRYPOINT ["/usr/local/bin/rps-api"]
