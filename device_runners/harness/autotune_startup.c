/* Cortex-M startup: vector table and reset handler, shared by all targets.
 * Symbols _sidata, _sdata, _edata, _sbss, _ebss and _estack come from the linker script;
 * _siramplaced, _sramplaced and _eramplaced from a placement script that copies weights or
 * kernels into SRAM (device_runners/harness/placement_*.ld), else an empty range.
 */
#include <stdint.h>

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _estack[];
extern uint32_t _siramplaced[], _sramplaced[], _eramplaced[];

int main(void);
void halt(void) __attribute__((noreturn));
void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void) __attribute__((noreturn));

typedef void (*handler_t)(void);

/* The 16 system exception entries; no interrupts are used. */
__attribute__((section(".vectors"), used)) const handler_t autotune_vectors[16] = {
    (handler_t)(uintptr_t)_estack, Reset_Handler,   Default_Handler, Default_Handler,
    Default_Handler,               Default_Handler, Default_Handler, Default_Handler,
    Default_Handler,               Default_Handler, Default_Handler, Default_Handler,
    Default_Handler,               Default_Handler, Default_Handler, Default_Handler,
};

void Reset_Handler(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU and MVE) before any code can touch them. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    for (uint32_t *src = _sidata, *dst = _sdata; dst < _edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *src = _siramplaced, *dst = _sramplaced; dst < _eramplaced;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = _sbss; dst < _ebss;) {
        *dst++ = 0;
    }
    main();
    halt();
}

/* A fault or stray exception parks here, distinct from `halt`, so runners can tell them apart.
 * Weak: a simulator harness (autotune_sim_main.c) reports the fault and stops instead. */
__attribute__((weak)) void Default_Handler(void)
{
    for (;;) {
    }
}
