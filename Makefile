# facgw: the two commands are `make run` and `make test`.
GO        ?= go
BIN       := bin
PKGS      := ./...
FUZZTIME  ?= 4s
export GOFLAGS ?= -mod=mod

.PHONY: run test unit fuzz-smoke bench bench-system lint build deps clean

## run: start the demo: facgw polling a simulated facility, with a live page
run: build
	$(BIN)/facgw run -config deploy/demo.yaml -demo

## build: compile facgw and facsim into bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/facgw ./cmd/facgw
	$(GO) build -o $(BIN)/facsim ./cmd/facsim

## package: build the Debian package dist/facgw_<version>_<arch>.deb (nfpm as a library)
.PHONY: package
package: build
	$(GO) run ./cmd/facpkg -bin $(BIN)/facgw -out dist

## deps: install the Debian packages the integration tests run against
deps:
	@bash deploy/test-deps.sh

## test: lint, unit and integration tests against real peers, brief fuzzing
test: deps lint
	@$(MAKE) --no-print-directory fuzz-smoke
	$(GO) test -race -count=1 -timeout 8m $(PKGS)

## unit: only the tests that need no peer
unit:
	$(GO) test -short -race -count=1 $(PKGS)

## fuzz-smoke: run every fuzz target in the tree briefly (longer by hand: make fuzz-smoke FUZZTIME=5m)
fuzz-smoke:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) bash deploy/fuzz-smoke.sh

## bench: micro-benchmarks, then the whole-system load (200 devices x 60 points at 1 s)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(GO) test -run '^$$' -bench 'FeedShippedPacks' -benchmem -cpu 1,2 ./rules/
	@$(MAKE) --no-print-directory bench-system

## bench-system: whole process (CPU, memory), detection-to-delivery latency of alerts, fsync cost of this disk
bench-system: build
	$(GO) run ./cmd/facbench -devices 200 -points 60 -interval 1s -duration 60s -facgw $(BIN)/facgw
	$(GO) run ./cmd/facbench -devices 200 -points 60 -interval 1s -snmp-devices 50 -snmp-points 40 -snmp-interval 5s -duration 60s -facgw $(BIN)/facgw
	$(GO) run ./cmd/facbench -devices 200 -points 60 -interval 1s -mqtt-brokers 2 -alerts -alertmanager -duration 90s -facgw $(BIN)/facgw
	$(GO) run ./cmd/facbench -fsync 500

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf $(BIN) var
