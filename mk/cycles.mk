# mk/cycles.mk — `make cycles` (part of `make test`, a few seconds): the
# files of each folder of src/ must form a DAG, i.e. no file calls back,
# directly or through others, into a file that calls it
# (scripts/cycles.sh reads the objects with nm and prints the cycles).
#
# CYCLES_ALLOW names the folders whose cycles are reported but do not fail
# the step, because they are being split elsewhere; none is today. Remove a
# folder from the list once its cycle is gone, so that it cannot come back.
# CYCLES_VERBOSE=1 prints every folder's whole graph.

CYCLES_ALLOW ?=
CYCLES_VERBOSE ?= 0

TEST_STEPS += cycles
.PHONY: cycles

cycles: $(LIB)
	@bash scripts/cycles.sh $(if $(filter 0,$(CYCLES_VERBOSE)),-q) $(addprefix --allow ,$(CYCLES_ALLOW)) \
		$(BUILD)/obj $(sort $(notdir $(wildcard src/*)))
