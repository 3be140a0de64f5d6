# ferry: the two commands of the quick start, and their parts.
#   make run    install what is missing, build, serve ./srv read-only on 127.0.0.1:2121
#   make test   install what is missing, build with and without sanitizers, run everything
#               (scripts/fresh-build.sh among them: `make build` of a fresh clone without the
#               test packages)
BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_FUZZ ?= build-fuzz
LISTEN     ?= 127.0.0.1:2121
FUZZ_SECONDS ?= 10
PYTEST     := /usr/bin/python3 -m pytest

.PHONY: all deps build run test unit wire test-san fuzz clean

all: build

deps:
	@scripts/install-deps.sh build

# Quiet when it works; when a step fails, scripts/quiet.sh prints its whole output.  Only
# the build packages are needed: the unit tests (option tests=auto) are built only when
# cmocka, a test package, is installed.
build: deps
	@test -f $(BUILD)/build.ninja || scripts/quiet.sh meson setup $(BUILD)
	@scripts/quiet.sh ninja -C $(BUILD)

run: build
	@mkdir -p srv
	@test -n "$$(ls -A srv)" || printf 'Welcome to ferry. Put files in ./srv to serve them.\n' > srv/README.txt
	@echo "ferryd is serving ./srv read-only to anonymous users on $(LISTEN)."
	@echo "Connect with:  curl ftp://$(LISTEN)/   or   lftp -p $(lastword $(subst :, ,$(LISTEN))) $(firstword $(subst :, ,$(LISTEN)))   (user anonymous, any password)"
	@echo "Stop with Ctrl-C."
	@exec ./$(BUILD)/src/server/ferryd --root ./srv --listen $(LISTEN)

test:
	@scripts/install-deps.sh test
	@scripts/test.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
