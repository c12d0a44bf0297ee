# One virtual environment at .venv; `make demo` and `make test` create it on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch/torchvision first, with pip: on these machines they come from local disk.
	$(BIN)/pip install -q -c constraints.txt torch torchvision
	$(BIN)/pip install -q -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

demo: setup
	$(BIN)/visdiff compare examples/a examples/b

test: setup chromium
	$(BIN)/python -m pytest -q

# The report test loads report.html in headless Chromium (Debian package), and the serve test drives it
# through chromium-driver (selenium); without them those tests fail.
.PHONY: chromium
chromium:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver) || echo "could not install chromium and chromium-driver: the browser tests of the report and of serve will fail" >&2

clean:
	rm -rf $(VENV) build *.egg-info
