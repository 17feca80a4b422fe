// vbng-uk boot stub: the only code that runs at CPL0 (besides the exception handlers: the
// idle and power-off requests, the OUT emulation, the fault report, and the wake
// interrupt).
//
// QEMU's PVH loader enters `pvh_start` in 32-bit protected mode with paging off and the
// physical address of the hvm_start_info structure in ebx. The stub turns on long mode
// with the image's identity map (the first 2 MiB in 4 KiB pages, the heap above in 2 MiB
// pages up to 16 MiB, and the virtio-mmio / APIC window), loads the GDT, TSS and IDT,
// enables SSE and drops to CPL3 with IOPL 3 in `uk_entry` (Rust, src/main.rs).
// Everything after that runs at CPL3: the poll loop does its MMIO there. The page tables
// are the linker's (build.rs): W^X, guard pages, the supervisor's structures out of
// reach, from the first instruction with paging on.
//
// Kept to a few dozen instructions: under KVM-PVM, CPL0 code is emulated.

// XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point. QEMU reads 8 bytes for a 64-bit ELF.
.section .note.pvh, "a", @note
.balign 4
.long 4
.long 8
.long 18
.asciz "Xen"
.balign 4
.quad pvh_start
.balign 4

.set KERNEL_CS, 0x08
.set KERNEL_DS, 0x10
.set USER_DS, 0x18 | 3
.set USER_CS, 0x20 | 3
.set TSS_SEL, 0x28
// RFLAGS for CPL3: IOPL 3 (port I/O and cli/sti), reserved bit 1, interrupts off.
.set USER_RFLAGS, 0x3002
.set VECTOR_WAKE, 0x40
.set LAPIC_EOI, 0xfee000b0

.section .boot, "ax"
.code32
.global pvh_start
boot_base:
pvh_start:
    cli
    rdtsc                               // the entry TSC, kept in ebp:esi
    mov esi, eax
    mov ebp, edx
    // Every control register and EFER gets a constant: PVH enters with paging off and
    // nothing in CR4 or EFER to keep, and a constant saves reading each one (every
    // instruction here is emulated under KVM-PVM).
    mov eax, (1 << 5) | (1 << 9) | (1 << 10)    // CR4: PAE, OSFXSR, OSXMMEXCPT
    mov cr4, eax
    mov eax, offset __pml4
    mov cr3, eax
    mov ecx, 0xc0000080                 // EFER
    mov eax, (1 << 8) | (1 << 11)       // LME, NXE
    xor edx, edx
    wrmsr
    // PG, WP, ET, MP, PE: caches on (CD, NW clear), EM off so that SSE is allowed.
    mov eax, (1 << 31) | (1 << 16) | (1 << 4) | (1 << 1) | 1
    mov cr0, eax
    lgdt [gdt_ptr]
    // jmp KERNEL_CS:long_entry (a direct far jump: no stack needed).
    .byte 0xea
    .long long_entry
    .word KERNEL_CS

.code64
// The data segment registers keep what PVH loaded: 64-bit mode ignores their bases, and
// IRETQ to CPL3 nulls those of a higher privilege. SS comes from the IRETQ frame.
long_entry:
    mov ax, TSS_SEL
    ltr ax
    lidt [idt_ptr]

    // To CPL3: uk_entry(hvm_start_info, entry TSC low half, high half). The upper halves
    // of the registers are undefined after the switch to 64-bit mode; the two 32-bit moves
    // clear them, and uk_start masks the low half (at CPL3, where it costs nothing). The
    // IRETQ frame is a constant.
    mov edi, ebx
    mov edx, ebp
    mov rsp, offset iret_to_user
    iretq

// No system call: CPL3 reaches the supervisor only through exceptions and interrupts. Two
// `ud2` instructions at known addresses (`uk_idle_trap`, `uk_power_off_trap` in .text)
// are the image's requests for the two things CPL3 cannot do: halt until the next
// interrupt (the poll loop's idle state) and power off. A trap, unlike SYSCALL, reaches
// CPL0 under every hypervisor this runs on, KVM-PVM included.

// An interrupt gate clears IF: nothing arrives between the check of `wake_pending` and
// STI; HLT (STI's shadow makes the pair atomic). An interrupt taken at CPL3 since the last
// halt (KVM-PVM keeps interrupts on there) leaves `wake_pending` set, and the halt is
// skipped once so that its frames are looked at.
idle_trap:
    add qword ptr [rsp], 2              // past the ud2
    cmp byte ptr [wake_pending], 0
    jne 1f
    sti
    hlt
    cli
1:  mov byte ptr [wake_pending], 0
    iretq

// No IDT, then an exception: a triple fault, which QEMU's -no-reboot turns into an exit
// (the image's way out on machines without isa-debug-exit).
power_off:
    lidt [null_idt_ptr]
    int3
    jmp power_off

// Invalid opcode: one of the two requests above, or a real fault.
ud_fault:
    cmp qword ptr [rsp], offset uk_idle_trap
    je idle_trap
    cmp qword ptr [rsp], offset uk_power_off_trap
    je power_off
    push 0
    push 6
    jmp fault_common

// A device or timer interrupt only ends the halt: acknowledge it at the local APIC.
wake_gate:
    push rax
    mov eax, LAPIC_EOI
    mov dword ptr [rax], 0
    mov byte ptr [wake_pending], 1
    pop rax
    iretq

// One 16-byte stub per exception vector: push a zero error code where the CPU pushes
// none, then the vector.
.balign 16
fault_stubs:
.set vec, 0
.rept 32
    .balign 16
    .if vec == 13
    jmp gp_fault
    .elseif vec == 6
    jmp ud_fault
    .else
    .if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp fault_common
    .endif
    .set vec, vec + 1
.endr

// General protection. Where IOPL 3 is not honoured for CPL3 (KVM-PVM runs the guest's
// CPL3 in the host's user mode), `out dx, al` to COM1, isa-debug-exit or the i8042
// command port faults: the handler performs exactly that and returns past it. Anything
// else is reported.
gp_fault:
    push rax
    push rdx
    push rsi
    mov rsi, [rsp + 32]                 // faulting rip
    cmp byte ptr [rsi], 0xee
    jne 9f
    mov rdx, [rsp + 8]
    cmp dx, 0x3f8
    je 8f
    cmp dx, 0x64
    je 8f
    cmp dx, 0xf4
    jne 9f
8:  mov rax, [rsp + 16]
    out dx, al
    add qword ptr [rsp + 32], 1
    pop rsi
    pop rdx
    pop rax
    add rsp, 8                          // error code
    iretq
9:  pop rsi
    pop rdx
    pop rax
    push 13
    jmp fault_common

// Prints "vbng-uk: cpu exception V error E rip R cr2 C" on COM1 and exits QEMU through
// isa-debug-exit with code 3 (QEMU's status 7), or else by an i8042 reset or a triple
// fault (QEMU's -no-reboot turns either into an exit).
fault_common:
    mov rsi, offset fault_msg
    call puts0
    mov rax, [rsp]
    call puthex
    mov rsi, offset fault_err
    call puts0
    mov rax, [rsp + 8]
    call puthex
    mov rsi, offset fault_rip
    call puts0
    mov rax, [rsp + 16]
    call puthex
    mov rsi, offset fault_cr2
    call puts0
    mov rax, cr2
    call puthex
    mov al, 10
    mov dx, 0x3f8
    out dx, al
    mov al, 3
    out 0xf4, al
    mov al, 0xfe
    out 0x64, al
    jmp power_off

puts0:
    mov dx, 0x3f8
4:  lodsb
    test al, al
    jz 5f
    out dx, al
    jmp 4b
5:  ret

puthex:
    mov rbx, rax
    mov ecx, 16
    mov dx, 0x3f8
6:  rol rbx, 4
    mov al, bl
    and al, 15
    add al, 48
    cmp al, 58
    jb 7f
    add al, 39
7:  out dx, al
    dec ecx
    jnz 6b
    ret

fault_msg: .asciz "\nvbng-uk: cpu exception "
fault_err: .asciz " error "
fault_rip: .asciz " rip "
fault_cr2: .asciz " cr2 "

// Entry at CPL3: a call keeps the System V stack alignment for Rust.
.section .text.uk_entry, "ax"
.global uk_entry
uk_entry:
    xor ebp, ebp
    call uk_start
    ud2

// The two requests to the supervisor (see idle_trap): `uk_idle()` returns after the next
// interrupt, `uk_power_off()` does not return.
.global uk_idle
uk_idle:
uk_idle_trap:
    ud2
    ret
.global uk_power_off
uk_power_off:
uk_power_off_trap:
    ud2
    jmp uk_power_off

// Supervisor data: present in the file, out of CPL3's reach.
.section .kdata, "aw"
.balign 16
gdt:
    .quad 0
    .quad 0x00209a0000000000            // kernel code, 64-bit
    .quad 0x0000920000000000            // kernel data
    .quad 0x0000f20000000000            // user data
    .quad 0x0020fa0000000000            // user code, 64-bit
    // TSS: limit 103, base split over the descriptor (link.ld computes the pieces).
    .word 103
    .word __tss_base_0_15
    .byte __tss_base_16_23
    .byte 0x89
    .byte 0
    .byte __tss_base_24_31
    .long 0
    .long 0
gdt_end:
.balign 8
    .word 0
    .word 0
    .word 0
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt
.balign 8
    .word 0
    .word 0
    .word 0
idt_ptr:
    .word idt_end - idt - 1
    .quad idt
.balign 8
    .word 0
    .word 0
    .word 0
null_idt_ptr:
    .word 0
    .quad 0
wake_pending:
    .byte 0

// The frame the boot stub's IRETQ pops: RIP, CS, RFLAGS, RSP, SS.
.balign 8
iret_to_user:
    .quad uk_entry
    .quad USER_CS
    .quad USER_RFLAGS
    .quad __ustack_top
    .quad USER_DS

// 64-bit TSS: the stack for entries from CPL3 (rsp0), no I/O permission bitmap.
.balign 16
.global uk_tss
uk_tss:
    .long 0
    .quad __kstack_top
    .fill 88, 1, 0
    .word 0
    .word 104

// An interrupt gate to `boot_base + offset` (all handlers lie in .boot, inside one 64 KiB
// block: link.ld checks it), with the type and privilege byte `attr`.
.macro gate offset, attr
    .word __boot_base_0_15 + \offset
    .word KERNEL_CS
    .byte 0
    .byte \attr
    .word __boot_base_16_31
    .long 0
    .long 0
.endm

// Vectors 0-31: CPU exceptions (report and exit); 0x40: wake (device and timer
// interrupts, taken while halted in the idle trap, and at CPL3 under KVM-PVM).
.balign 16
idt:
.set vec, 0
.rept 32
    gate (fault_stubs - boot_base + 16 * vec), 0x8e
    .set vec, vec + 1
.endr
    .fill (VECTOR_WAKE - 32) * 16, 1, 0
    gate (wake_gate - boot_base), 0x8e
idt_end:

