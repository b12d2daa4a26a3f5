/* QEMU TCG plugin for apollo5-sim: how often each translation block runs, per kernel call.
 *
 * Arguments: entry=ADDR,entry_end=ADDR (the model's invoke function), ret=ADDR (where it returns
 * to in main), out=FILE. From each call of the entry until it returns, executions are counted
 * per block and split into segments: a glue segment while the entry's own code runs, a call
 * segment from the first block outside it (the called kernel's address) until control comes
 * back. Each block also counts how often the next block executed started right after it (fall
 * through); the rest of its executions ended in a taken branch.
 *
 * Output lines: "B id vaddr insns bytes" when a block is translated; "I" at each call of the
 * entry, "G" or "C vaddr" at each segment start, then "id count fall" for the blocks that ran in
 * it; "E" when the entry returns.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

typedef struct {
    uint64_t vaddr, count, fall; /* counts within the current segment */
    uint32_t id, bytes, dirty;
} block_t;

enum state { OUTSIDE, GLUE, CALL };

static struct {
    uint64_t entry, entry_end, ret;
    FILE *out;
    enum state state;
    block_t *prev;
    block_t **dirty;
    size_t n_dirty, cap_dirty;
    uint32_t n_blocks;
} p;

static void flush_segment(void)
{
    for (size_t i = 0; i < p.n_dirty; ++i) {
        block_t *b = p.dirty[i];
        fprintf(p.out, "%" PRIu32 " %" PRIu64 " %" PRIu64 "\n", b->id, b->count, b->fall);
        b->count = b->fall = 0;
        b->dirty = 0;
    }
    p.n_dirty = 0;
    p.prev = NULL;
}

static void on_exec(unsigned int vcpu, void *udata)
{
    block_t *b = udata;
    const uint64_t pc = b->vaddr;
    (void)vcpu;
    if (p.state == OUTSIDE) {
        if (pc != p.entry) {
            return;
        }
        fputs("I\nG\n", p.out);
        p.state = GLUE;
    } else if (pc == p.ret) {
        flush_segment();
        fputs("E\n", p.out);
        p.state = OUTSIDE;
        return;
    } else {
        const int in_entry = pc >= p.entry && pc < p.entry_end;
        if (in_entry && p.state == CALL) {
            flush_segment();
            fputs("G\n", p.out);
            p.state = GLUE;
        } else if (!in_entry && p.state == GLUE) {
            flush_segment();
            fprintf(p.out, "C %" PRIx64 "\n", pc);
            p.state = CALL;
        }
    }
    if (p.prev != NULL && pc == p.prev->vaddr + p.prev->bytes) {
        p.prev->fall++;
    }
    if (!b->dirty) {
        if (p.n_dirty == p.cap_dirty) {
            p.cap_dirty = p.cap_dirty ? 2 * p.cap_dirty : 1024;
            p.dirty = realloc(p.dirty, p.cap_dirty * sizeof *p.dirty);
            if (p.dirty == NULL) {
                abort();
            }
        }
        p.dirty[p.n_dirty++] = b;
        b->dirty = 1;
    }
    b->count++;
    p.prev = b;
}

/* The size of a Thumb instruction from its first halfword. (QEMU's own insn size can include a
 * halfword it read ahead to tell a 16-bit instruction from a 32-bit one.) */
static uint32_t thumb_size(const struct qemu_plugin_insn *insn)
{
    const uint8_t *data = qemu_plugin_insn_data(insn);
    const uint32_t top = data[1] >> 3; /* bits 15:11, little-endian halfword */
    return top == 0x1D || top == 0x1E || top == 0x1F ? 4 : 2;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const size_t n = qemu_plugin_tb_n_insns(tb);
    const struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
    block_t *b = calloc(1, sizeof *b); /* lives as long as QEMU may run the block */
    (void)id;
    if (b == NULL) {
        abort();
    }
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->bytes = (uint32_t)(qemu_plugin_insn_vaddr(last) + thumb_size(last) - b->vaddr);
    b->id = p.n_blocks++;
    fprintf(p.out, "B %" PRIu32 " %" PRIx64 " %zu %" PRIu32 "\n", b->id, b->vaddr, n, b->bytes);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void on_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    fflush(p.out);
}

static int parse(const char *arg, const char *key, uint64_t *value)
{
    const size_t n = strlen(key);
    if (strncmp(arg, key, n) != 0 || arg[n] != '=') {
        return 0;
    }
    *value = strtoull(arg + n + 1, NULL, 0);
    return 1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    (void)info;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            p.out = fopen(argv[i] + 4, "w");
        } else if (!parse(argv[i], "entry", &p.entry) && !parse(argv[i], "entry_end", &p.entry_end)
                   && !parse(argv[i], "ret", &p.ret)) {
            fprintf(stderr, "tb_profile: unknown argument %s\n", argv[i]);
            return 1;
        }
    }
    if (p.out == NULL || p.entry == 0 || p.entry_end <= p.entry || p.ret == 0) {
        fprintf(stderr, "tb_profile: needs out=FILE, entry=, entry_end= and ret= addresses\n");
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
