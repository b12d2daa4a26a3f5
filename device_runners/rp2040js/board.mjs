// Boots an RP2040 UF2 image on rp2040js (Wokwi's RP2040 emulator) the way a Pico does, with its
// UART0 on this process's stdin and stdout; driven by device_runners/rp2040js_runner.py
// (Rp2040jsBoard), which puts a pseudo-terminal in front of it for the board runner.
//
//   node board.mjs firmware.uf2
//
// rp2040js ships no bootrom, so this script does what the bootrom does before boot2 runs: it
// writes the UF2's blocks into flash, refuses an image whose boot2 CRC-32/MPEG-2 is wrong, and
// enters boot2 at 0x10000000 with lr = 0 and the stack at the top of SRAM, as rp2040js's own demo
// starts images (the bootrom would run boot2 from a copy in SRAM; boot2 is position independent).
// From there everything is the firmware's own: boot2 sets up XIP and jumps through the vector
// table at 0x10000100, the reset handler starts the C runtime, main sets the clocks and UART0 and
// serves requests. The emulated time advances by each instruction's cycles at the current clk_sys,
// so SysTick and the microsecond timer count what the firmware's cycle counter expects.
// Bytes from stdin are fed to UART0 as its 32-byte receive FIFO has room; bytes the firmware
// sends go to stdout. Ends when stdin closes.
import fs from 'node:fs';
import { RP2040 } from 'rp2040js';

const FLASH_START = 0x10000000;
const UF2_MAGIC = [0x0a324655, 0x9e5d5157];
const UART_FR = 0x18;
const BURST = 100000; // instructions between looks at stdin
const IDLE_POLLS = 2000; // empty receive FIFO polls in a burst: the firmware is waiting for input

function crc32Mpeg2(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte << 24;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    }
  }
  return crc >>> 0;
}

function loadUf2(mcu, uf2) {
  for (let offset = 0; offset + 512 <= uf2.length; offset += 512) {
    if (uf2.readUInt32LE(offset) !== UF2_MAGIC[0] || uf2.readUInt32LE(offset + 4) !== UF2_MAGIC[1]) {
      throw new Error(`block at ${offset} is not a UF2 block`);
    }
    const address = uf2.readUInt32LE(offset + 12);
    const size = uf2.readUInt32LE(offset + 16);
    mcu.flash.set(uf2.subarray(offset + 32, offset + 32 + size), address - FLASH_START);
  }
}

const mcu = new RP2040();
mcu.logger = { debug() {}, info() {}, warn() {}, error(tag, msg) { process.stderr.write(`${tag}: ${msg}\n`); } };
loadUf2(mcu, fs.readFileSync(process.argv[2]));
const boot2 = mcu.flash.subarray(0, 256);
const stored = new DataView(boot2.buffer, boot2.byteOffset + 252, 4).getUint32(0, true);
if (crc32Mpeg2(boot2.subarray(0, 252)) !== stored) {
  process.stderr.write('Error: boot2 CRC mismatch: the bootrom would not boot this image\n');
  process.exit(3);
}
const core = mcu.core;
core.SP = 0x20042000;
core.LR = 0;
core.PC = FLASH_START;

const uart = mcu.uart[0];
const received = []; // bytes from stdin not yet in the UART's FIFO
let receivedAt = 0;
let sent = [];
let emptyPolls = 0;
uart.onByte = (byte) => sent.push(byte);
const readRegister = uart.readUint32.bind(uart);
uart.readUint32 = (offset) => {
  if (offset === UART_FR && uart.rxFIFO.empty) {
    emptyPolls++;
  }
  return readRegister(offset);
};

let stdinOpen = true;
process.stdin.on('data', (chunk) => {
  for (const byte of chunk) {
    received.push(byte);
  }
});
process.stdin.on('end', () => {
  stdinOpen = false;
});

function run() {
  emptyPolls = 0;
  for (let i = 0; i < BURST; i++) {
    while (receivedAt < received.length && !uart.rxFIFO.full) {
      uart.feedByte(received[receivedAt++]);
    }
    const cycles = core.executeInstruction();
    mcu.clock.tick((cycles * 1e9) / mcu.clkSys);
  }
  if (receivedAt === received.length && receivedAt > 0) {
    received.length = 0;
    receivedAt = 0;
  }
  if (sent.length) {
    process.stdout.write(Buffer.from(sent));
    sent = [];
  }
  if (!stdinOpen && receivedAt === received.length) {
    process.exit(0);
  }
  // Waiting for a request: let the event loop deliver stdin instead of spinning.
  const waiting = emptyPolls > IDLE_POLLS && receivedAt === received.length;
  if (waiting) {
    setTimeout(run, 1);
  } else {
    setImmediate(run);
  }
}
run();
