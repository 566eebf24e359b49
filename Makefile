# The kernel build. `make` builds build/kernel.elf; `make run` boots it and shows
# the serial console; `make test` runs every host and guest test.
#
#   kernel/ drivers/ --csc--> kernel.dll --ilc--> build/kernel.o --+
#   boot/*.asm --nasm--> build/boot/*.o -------------------------+--ld.lld--> build/kernel.elf

BUILD   := build
ASM     := $(wildcard boot/*.asm)
ASM_OBJ := $(patsubst boot/%.asm,$(BUILD)/boot/%.o,$(ASM))
CS      := $(shell find kernel drivers -name '*.cs') kernel.csproj Directory.Build.props
DOTNET  := dotnet
DOTNET_FLAGS := -nologo -v q -c Release

.PHONY: all kernel run test deps clean

all: kernel
kernel: $(BUILD)/kernel.elf

deps:
	@tools/deps.sh build

$(BUILD)/.deps-build: tools/deps.sh
	@tools/deps.sh build
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/boot/%.o: boot/%.asm boot/abi.inc $(BUILD)/.deps-build
	@mkdir -p $(dir $@)
	nasm -f elf64 -I boot/ -o $@ $<

$(BUILD)/kernel.o: $(CS) $(BUILD)/.deps-build
	$(DOTNET) build kernel.csproj $(DOTNET_FLAGS)
	@touch $@

$(BUILD)/kernel.elf: $(BUILD)/kernel.o $(ASM_OBJ) boot/linker.ld
	ld.lld -static -nostdlib -z max-page-size=4096 -z noexecstack -T boot/linker.ld \
	    -Map=$(BUILD)/kernel.map -o $@ $(ASM_OBJ) $(BUILD)/kernel.o

run: kernel
	@tools/deps.sh run
	./qemu-run.sh --mode tcg

test: kernel
	@tools/deps.sh run
	tools/run-tests.sh

clean:
	rm -rf $(BUILD)
