# The kernel build. `make` builds both images; `make run` boots one and shows
# the serial console; `make test` runs every host and guest test.
#
# Two images from the same kernel/ and drivers/: build/kernel.elf, the minimal
# enlightened guest (boots, enlightens every VP, connects VMBus, says ready),
# and build/kernel-test.elf, which adds the test and bench tree tests/guest/.
#
#   kernel/ drivers/ [tests/guest/] --csc--> kernel.dll --ilc--> build/kernel[-test].o --+
#   boot/*.asm [boot/bench.asm] --nasm--> build/boot/*.o -----------------------------+--ld.lld--> build/kernel[-test].elf
#
# `make image` builds the same kernels for UEFI (a Hyper-V Generation 2 VM):
#   ... --ilc --targetos:windows--> build/kernel[-test].obj (COFF) --+
#   boot/*.asm + boot/efi/*.asm --nasm -f win64--> build/efi/ -------+--lld-link--> build/BOOTX64[-minimal].EFI
#   BOOTX64.EFI (GEN2_IMAGE=test, the default) or BOOTX64-minimal.EFI (GEN2_IMAGE=minimal)
#     --tools/hyperv/mkgen2.py (GPT, FAT32 ESP, mtools)--> build/gen2.img --qemu-img--> build/gen2.vhdx

BUILD   := build
# boot/bench.asm, the bench's bare-assembly floors, is test-only: only the test
# image (kernel-test.elf, BOOTX64.EFI) links it, as it compiles tests/guest/.
TEST_ASM := boot/bench.asm
ASM     := $(filter-out $(TEST_ASM),$(wildcard boot/*.asm))
ASM_INC := $(wildcard boot/*.inc)
ASM_OBJ := $(patsubst boot/%.asm,$(BUILD)/boot/%.o,$(ASM))
TEST_ASM_OBJ := $(patsubst boot/%.asm,$(BUILD)/boot/%.o,$(TEST_ASM))
CS      := $(shell find kernel drivers -name '*.cs') kernel.csproj Directory.Build.props
TEST_CS := $(shell find tests/guest -name '*.cs')
DOTNET  := dotnet
DOTNET_FLAGS := -nologo -v q -c Release

# The PE build leaves out the PVH entry; boot/efi/ has the UEFI one.
EFI_ASM := $(filter-out boot/entry.asm,$(ASM)) $(wildcard boot/efi/*.asm)
EFI_OBJ := $(patsubst boot/%.asm,$(BUILD)/efi/%.obj,$(EFI_ASM))
EFI_TEST_OBJ := $(patsubst boot/%.asm,$(BUILD)/efi/%.obj,$(TEST_ASM))
# The kernel command line the image boots with (EFI/BOOT/CMDLINE.TXT); qemu-run.sh --uefi rewrites it per run.
GEN2_CMDLINE ?= test
# Which image the Gen2 disk boots: the test image (a Gen2 boot is how a user tests a host) or the minimal one.
GEN2_IMAGE ?= test
GEN2_EFI := $(BUILD)/BOOTX64$(if $(filter minimal,$(GEN2_IMAGE)),-minimal).EFI

.PHONY: all kernel image nested run test bench deps clean

all: kernel
kernel: $(BUILD)/kernel.elf $(BUILD)/kernel-test.elf

deps:
	@tools/deps.sh build

$(BUILD)/.deps-build: tools/deps.sh
	@tools/deps.sh build
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/boot/%.o: boot/%.asm $(ASM_INC) $(BUILD)/.deps-build
	@mkdir -p $(dir $@)
	nasm -f elf64 -I boot/ -o $@ $<

$(BUILD)/kernel.o: $(CS) $(BUILD)/.deps-build
	$(DOTNET) build kernel.csproj $(DOTNET_FLAGS)
	@touch $@

# After kernel.o: the builds share the restore in build/obj, so they must not run at once.
$(BUILD)/kernel-test.o: $(CS) $(TEST_CS) $(BUILD)/kernel.o
	$(DOTNET) build kernel.csproj $(DOTNET_FLAGS) -p:Image=test
	@touch $@

# -n: segments packed in the file, page-aligned only in memory (boot/linker.ld says why).
LINK_ELF = ld.lld -static -nostdlib -n -z noexecstack -T boot/linker.ld

# Each image's objects, in link order, are its prerequisites: the link lines
# below take them from there (the .stripped ones are the images as shipped,
# without symbols, for the size figures of make bench).
$(BUILD)/kernel.elf $(BUILD)/kernel.stripped.elf: $(ASM_OBJ) $(BUILD)/kernel.o
$(BUILD)/kernel-test.elf $(BUILD)/kernel-test.stripped.elf: $(ASM_OBJ) $(TEST_ASM_OBJ) $(BUILD)/kernel-test.o

$(BUILD)/%.stripped.elf: boot/linker.ld
	$(LINK_ELF) --strip-all -o $@ $(filter %.o,$^)

$(BUILD)/%.elf: boot/linker.ld
	$(LINK_ELF) -Map=$(BUILD)/$*.map -o $@ $(filter %.o,$^)

image: $(BUILD)/BOOTX64.EFI $(BUILD)/BOOTX64-minimal.EFI $(BUILD)/gen2.img $(BUILD)/gen2.vhdx

$(BUILD)/.deps-image: tools/deps.sh
	@tools/deps.sh image
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/efi/%.obj: boot/%.asm $(ASM_INC) $(BUILD)/.deps-build
	@mkdir -p $(dir $@)
	nasm -f win64 -DABI_WIN64 -I boot/ -o $@ $<

$(BUILD)/kernel.obj: $(CS) $(BUILD)/kernel-test.o
	$(DOTNET) build kernel.csproj $(DOTNET_FLAGS) -p:IlcTargetOs=windows
	@touch $@

$(BUILD)/kernel-test.obj: $(CS) $(TEST_CS) $(BUILD)/kernel.obj
	$(DOTNET) build kernel.csproj $(DOTNET_FLAGS) -p:IlcTargetOs=windows -p:Image=test
	@touch $@

# A UEFI application (PE32+, subsystem 10) with base relocations: firmware loads it anywhere.
# The merges leave one section per permission, in the order code, read-only, writable
# (then the discardable .reloc), which kernel/arch/efi/PeImage.cs reads back for Paging.
# ilc's unwind tables (.pdata, .xdata) go into a section of their own, .unwind, which
# link_efi removes: nothing in the kernel unwinds (no C# exceptions, no stack walks;
# the ELF link discards .eh_frame likewise), and lld-link cannot drop a section itself.
# (lld-link then warns ".xdata=.rdata: already merged into .unwind": its own default
# merge of .xdata, which ours replaces; there is no switch to silence it.)
EFI_MERGE := /merge:.managedcode=.text /merge:.text_hypercall_page=.text \
             /merge:.ex_table=.rdata /merge:.modules=.rdata /merge:.tls=.rdata \
             /merge:.pdata=.unwind /merge:.xdata=.unwind
# /debug:symtab appends a COFF symbol table, outside every section (firmware loads none
# of it), for gdb (qemu-run.sh --uefi --gdb). /debug would also turn /opt:ref and
# /opt:icf off: restated, they keep the sections exactly what they are without it.
LINK_EFI = lld-link /nologo /subsystem:efi_application /entry:EfiMain /nodefaultlib /machine:x64 \
	    /debug:symtab /opt:ref /opt:icf $(EFI_MERGE)

# link_efi <objects after boot/'s> <application>: lld-link, then the .unwind
# section out (objcopy), and tools/efi/trim-headers.py: the exception directory
# that named it cleared, and the headers, which objcopy writes 1 KiB long, in 512 bytes.
define link_efi
	$(LINK_EFI) /map:$(basename $2).map /out:$2.linked $(EFI_OBJ) $1
	objcopy --remove-section .unwind $2.linked $2
	python3 tools/efi/trim-headers.py $2
	@rm -f $2.linked
endef

$(BUILD)/BOOTX64.EFI: $(BUILD)/kernel-test.obj $(EFI_OBJ) $(EFI_TEST_OBJ) tools/efi/trim-headers.py $(BUILD)/.deps-image
	$(call link_efi,$(EFI_TEST_OBJ) $(BUILD)/kernel-test.obj,$@)

$(BUILD)/BOOTX64-minimal.EFI: $(BUILD)/kernel.obj $(EFI_OBJ) tools/efi/trim-headers.py $(BUILD)/.deps-image
	$(call link_efi,$(BUILD)/kernel.obj,$@)

# The applications as shipped, without the COFF symbol table, for the size figures of make bench
# (objcopy writes the headers anew, so trim-headers.py runs again).
$(BUILD)/%.stripped.EFI: $(BUILD)/%.EFI tools/efi/trim-headers.py
	objcopy --strip-all $< $@
	python3 tools/efi/trim-headers.py $@

$(BUILD)/gen2.img: $(GEN2_EFI) tools/hyperv/mkgen2.py
	$(if $(filter-out minimal test,$(GEN2_IMAGE)),$(error GEN2_IMAGE=$(GEN2_IMAGE): use test (the default) or minimal))
	python3 tools/hyperv/mkgen2.py $@.tmp $(GEN2_EFI) "$(GEN2_CMDLINE)"
	@mv $@.tmp $@

$(BUILD)/gen2.vhdx: $(BUILD)/gen2.img
	qemu-img convert -f raw -O vhdx $< $@

# The enlightened guest at work, two VPs, in the best mode this host has
# (qemu-run.sh --mode auto: its KVM with Hyper-V, else the nested runner,
# else TCG with a note saying why): detection, the hypercall page, the SynIC
# on each VP, the Direct call's answer, VMBus contact and offers.
run: kernel
	@tools/deps.sh run qemu nested qemu-build
	./qemu-run.sh --mode auto --smp 2

# The nested runner's pieces, cached in .cache/nested (each step is a quick
# no-op once done): Debian's kernel and the busybox initramfs, the patched
# outer QEMU (tools/nested/qemu, minutes to build) and the project's KVM
# with the Direct calls (tools/nested/kvm). Built before the tests, so that
# no test's timeout includes a first build.
nested:
	@tools/deps.sh nested kvm qemu-build
	tools/nested/prepare.sh
	tools/nested/qemu/build.sh >/dev/null
	tools/nested/kvm/build.sh >/dev/null

# The tests and the bench boot nested runs, with stock KVM and the project's,
# under the patched outer QEMU.
test: kernel image nested
	@tools/deps.sh run qemu test
	tools/qemu/fetch.sh >/dev/null
	tools/run-tests.sh

bench: kernel image nested
	@tools/deps.sh run qemu
	tools/qemu/fetch.sh >/dev/null
	tools/bench.sh

clean:
	rm -rf $(BUILD)
