// Runs an autotune rp2040 firmware image on rp2040js (Wokwi's RP2040 emulator), driven by
// device_runners/rp2040js_runner.py. Reads one JSON request on stdin, writes one JSON result.
//
// The ELF's segments are loaded straight into flash and SRAM and the core starts at the reset
// vector with the initial stack pointer of our vector table (boot2 and the board's main are
// skipped: board.mjs boots the same image from boot2 instead). The run goes to `main`, the
// input is written into autotune_input, then it continues at `autotune_measure` and runs to
// `halt`; instructions and cycles are counted from the entry function's first instruction until
// it returns to its caller.
import fs from 'node:fs';
import { RP2040 } from 'rp2040js';

const FLASH_START = 0x10000000;
const RAM_START = 0x20000000;

const request = JSON.parse(fs.readFileSync(0, 'utf8'));

function place(mcu, address, bytes) {
  if (address >= RAM_START) {
    mcu.sram.set(bytes, address - RAM_START);
  } else if (address >= FLASH_START) {
    mcu.flash.set(bytes, address - FLASH_START);
  } else {
    throw new Error(`segment at 0x${address.toString(16)} is neither in flash nor in SRAM`);
  }
}

const mcu = new RP2040();
for (const [address, data] of request.segments) {
  place(mcu, address, Buffer.from(data, 'base64'));
}
const core = mcu.core;
core.SP = request.sp;
core.PC = request.reset & ~1;

let steps = 0;
function runTo(address) {
  while (core.PC !== address) {
    if (++steps > request.max_instructions) {
      throw new Error(`did not reach 0x${address.toString(16)} in ${request.max_instructions} instructions`);
    }
    core.executeInstruction();
  }
}

runTo(request.main);
place(mcu, request.input[0], Buffer.from(request.input[1], 'base64'));
core.PC = request.measure;

let instructions = 0;
// PUSH {..., lr} and POP {..., pc}: rp2040js charges no cycle for moving LR or PC, the
// Cortex-M0+ one (1 + N for PUSH, 3 + N for POP and return, N counting every register).
let linkTransfers = 0;
let cycles = 0;
let returnTo = -1;
let startCycles = 0;
while (core.PC !== request.halt) {
  if (++steps > request.max_instructions) {
    throw new Error(`did not reach halt in ${request.max_instructions} instructions`);
  }
  const pc = core.PC;
  if (returnTo < 0 && pc === request.entry) {
    returnTo = core.LR & ~1;
    startCycles = core.cycles;
  } else if (returnTo >= 0 && pc === returnTo) {
    cycles = core.cycles - startCycles;
    returnTo = -2; // returned: count nothing more
  }
  if (returnTo >= 0) {
    instructions++;
    const opcode = mcu.readUint16(pc);
    if ((opcode >> 9 === 0b1011010 || opcode >> 9 === 0b1011110) && opcode & 0x100) {
      linkTransfers++;
    }
  }
  core.executeInstruction();
}

const [outAddress, outSize] = request.output;
const output = Buffer.from(mcu.sram.subarray(outAddress - RAM_START, outAddress - RAM_START + outSize));
const status = mcu.sramView.getInt32(request.status - RAM_START, true);
process.stdout.write(JSON.stringify({
  output: output.toString('base64'), status, instructions, cycles, linkTransfers,
  returned: returnTo === -2,
}));
