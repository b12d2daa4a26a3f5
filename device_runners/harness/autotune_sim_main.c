/* Simulator harness (apollo5-sim): runs the model on every input record of a host file.
 *
 * Replaces autotune_main.c in images that run under QEMU with Arm semihosting: reads
 * MODEL_INPUT_SIZE-byte records from `input.bin` (in QEMU's working directory) into
 * `autotune_input`, calls the entry point on each, and appends the output and the int32 status
 * to `output.bin`; then exits QEMU with status 0. A model that keeps its input and output in its
 * arena (autotune_io.h) runs on those, as on the target: the records are copied in and out. A fault exits with status 1 instead of
 * spinning, so a runner never waits for a timeout.
 */
#include <stdint.h>

#include "autotune_io.h"

#ifndef AUTOTUNE_ENTRY
#error "AUTOTUNE_ENTRY (the model's invoke function) must be defined on the command line"
#endif

int AUTOTUNE_ENTRY(const int8_t *input, int8_t *output);

int8_t autotune_input[MODEL_INPUT_SIZE];
int8_t autotune_output[MODEL_OUTPUT_SIZE];
volatile int32_t autotune_status = -1;

enum { SYS_OPEN = 0x01, SYS_WRITE = 0x05, SYS_READ = 0x06, SYS_EXIT = 0x18 };
enum { MODE_RB = 1, MODE_WB = 5 };  /* fopen modes "rb" and "wb" */
#define EXIT_SUCCESS_REASON 0x20026u /* ADP_Stopped_ApplicationExit */
#define EXIT_FAILURE_REASON 0x20023u /* ADP_Stopped_RunTimeErrorUnknown */

/* One semihosting call: operation in r0, argument block in r1, result in r0. */
static int32_t semihost(uint32_t op, const void *args)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static int32_t open_file(const char *name, uint32_t length, uint32_t mode)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, mode, length};
    return semihost(SYS_OPEN, args);
}

/* SYS_READ and SYS_WRITE return the number of bytes NOT transferred. */
static int32_t transfer(uint32_t op, int32_t handle, const void *buffer, uint32_t size)
{
    const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buffer, size};
    return semihost(op, args);
}

void autotune_exit(uint32_t reason) __attribute__((noreturn));
void autotune_exit(uint32_t reason)
{
    semihost(SYS_EXIT, (const void *)(uintptr_t)reason);
    for (;;) {
    }
}

void Default_Handler(void) __attribute__((noreturn));
void Default_Handler(void)
{
    autotune_exit(EXIT_FAILURE_REASON);
}

void halt(void) __attribute__((noreturn));
void halt(void)
{
    autotune_exit(EXIT_SUCCESS_REASON);
}

int main(void)
{
    const int32_t in = open_file("input.bin", 9, MODE_RB);
    const int32_t out = open_file("output.bin", 10, MODE_WB);
    if (in < 0 || out < 0) {
        autotune_exit(EXIT_FAILURE_REASON);
    }
    while (transfer(SYS_READ, in, autotune_input, MODEL_INPUT_SIZE) == 0) {
#ifdef MODEL_INPUT
        for (uint32_t i = 0; i < MODEL_INPUT_SIZE; i++) {
            MODEL_INPUT[i] = autotune_input[i];
        }
        autotune_status = AUTOTUNE_ENTRY(MODEL_INPUT, MODEL_OUTPUT);
        for (uint32_t i = 0; i < MODEL_OUTPUT_SIZE; i++) {
            autotune_output[i] = MODEL_OUTPUT[i];
        }
#else
        autotune_status = AUTOTUNE_ENTRY(autotune_input, autotune_output);
#endif
        if (transfer(SYS_WRITE, out, autotune_output, MODEL_OUTPUT_SIZE) != 0
            || transfer(SYS_WRITE, out, (const void *)&autotune_status, 4) != 0) {
            autotune_exit(EXIT_FAILURE_REASON);
        }
    }
    halt();
}
