# aios: the two commands that matter are `make run` (the kernel on its embedded simulated
# core) and `make test` (everything CI checks). .ci/run is `make test`.

GO       ?= go
# npm packages of real peers: the openai SDKs (test/e2e/openai-npm), the MCP reference
# servers and TypeScript MCP client (test/e2e/mcp-npm), and playwright-core, which drives
# the dashboard in Debian's chromium (test/e2e/ui-npm).
NPM_DIRS := test/e2e/openai-npm test/e2e/mcp-npm test/e2e/ui-npm
# A stamp inside node_modules: `npm ci` wipes the folder, so the stamp can only be newer
# than the lockfile when the install from that very lockfile finished.
NPM_STAMPS := $(addsuffix /node_modules/.aios-installed,$(NPM_DIRS))
# Every Go file of ours; node_modules is pruned so a package that ships Go sources can't
# fail the format check.
GO_FIND := find . \( -path ./.git -o -name node_modules \) -prune -o -name '*.go' -print

.PHONY: build run test vet fmt fmt-check npm chromium e2e bench

build:
	$(GO) build -o bin/aios ./cmd/aios

run:
	$(GO) run ./cmd/aios serve $(ARGS)

# Files tests keep (t.ArtifactDir: the dashboard's screenshots) go under bin/artifacts.
ARTIFACTS := $(CURDIR)/bin/artifacts

# A throwaway PostgreSQL (test/pg/start.sh) serves the storage conformance suite; it is
# stopped and removed however the tests end.
test: vet fmt-check npm chromium
	@mkdir -p $(ARTIFACTS)
	@trap 'test/pg/stop.sh' EXIT; trap 'exit 130' INT TERM; \
	dsn="$$(test/pg/start.sh)" || exit 1; \
	echo "PostgreSQL for tests: $$dsn"; \
	AIOS_TEST_POSTGRES_DSN="$$dsn" AIOS_PG_REQUIRED=1 AIOS_E2E_REQUIRED=1 $(GO) test -race -count=1 -timeout 20m -artifacts -outputdir $(ARTIFACTS) ./...

vet:
	$(GO) vet ./...

fmt-check:
	@unformatted="$$($(GO_FIND) | xargs gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt would change these files (run make fmt):"; echo "$$unformatted"; exit 1; \
	fi

fmt:
	$(GO_FIND) | xargs gofmt -w

# Each npm folder is installed from its lockfile only when it is missing or the lockfile
# changed.
npm: $(NPM_STAMPS)

%/node_modules/.aios-installed: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund
	touch $@

# Debian's chromium for the dashboard's browser test, installed with apt-get when missing.
chromium:
	test/e2e/ui-npm/install-chromium.sh

# Only the end-to-end tests: the real binary driven by the npm SDK and the Go SDK.
e2e: npm chromium
	@mkdir -p $(ARTIFACTS)
	AIOS_E2E_REQUIRED=1 $(GO) test -count=1 -v -artifacts -outputdir $(ARTIFACTS) ./test/e2e

# Benchmarks print their ratios against a baseline measured in the same run; nothing is
# asserted, so they stay out of `make test`.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
