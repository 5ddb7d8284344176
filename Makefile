# The two commands a fresh Debian 12 machine needs: `make demo`, `make test`.
BUILD_DIR := build
JOBS := $(shell nproc)
CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3

.PHONY: all deps configure build test demo bench bench-data bench-train bench-serving bench-python-models bench-scoring bench-monitoring clean

all: build

deps:
	scripts/install-deps

configure: deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

demo: build
	$(BUILD_DIR)/slipway demo

bench: build
	bench/run-all $(BUILD_DIR)
	bench/serving/run $(BUILD_DIR)
	bench/python_models/run $(BUILD_DIR)
	bench/scoring/run $(BUILD_DIR)
	bench/monitoring/run $(BUILD_DIR)

bench-data: build
	bench/run-all $(BUILD_DIR) data

bench-train: build
	bench/run-all $(BUILD_DIR) train

bench-serving: build
	bench/serving/run $(BUILD_DIR)

bench-python-models: build
	bench/python_models/run $(BUILD_DIR)

bench-scoring: build
	bench/scoring/run $(BUILD_DIR)

bench-monitoring: build
	bench/monitoring/run $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
