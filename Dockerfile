# batond and batonctl on Debian. The build stage runs the project's own
# scripts/setup; the runtime stage holds the two binaries and the Debian
# packages of the libraries they link, nothing else, and runs as a
# non-root user (the chart's securityContext expects uid 65532).
#
#   docker build -t ghcr.io/baton-dtc/batond:0.1.0 .

FROM debian:bookworm AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends g++ cmake git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build && BUILD_TYPE=Release scripts/setup
# The runtime packages: whichever Debian packages own the shared libraries
# the binaries load.
RUN mkdir -p /out/bin \
 && cp build/bin/batond build/bin/batonctl /out/bin/ \
 && strip /out/bin/* \
 && for lib in $(ldd /out/bin/batond /out/bin/batonctl \
                 | awk '/=> \// { print $3 }' | sort -u); do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")"; \
    done | cut -d: -f1 | tr -d ' ' | tr ',' '\n' | sort -u > /out/packages

FROM debian:bookworm-slim
COPY --from=build /out/packages /tmp/packages
RUN apt-get update -qq \
 && xargs -a /tmp/packages apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages \
 && groupadd --system --gid 65532 baton \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --shell /usr/sbin/nologin baton \
 && install -d -o 65532 -g 65532 /var/lib/baton
COPY --from=build /out/bin/ /usr/local/bin/
USER 65532:65532
VOLUME /var/lib/baton
EXPOSE 7420 7425 9464
ENTRYPOINT ["/usr/local/bin/batond"]
# Beyond loopback batond wants TLS: add --tls-cert and --tls-key (the chart
# does), or --insecure where the network is secured otherwise.
CMD ["--listen=0.0.0.0:7420", "--data-dir=/var/lib/baton", "--health-listen=0.0.0.0:7425"]
