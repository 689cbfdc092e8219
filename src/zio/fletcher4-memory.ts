// The part of a Fletcher-4 kernel's memory the kernel keeps for itself: its
// result goes at the start, data may lie only past this. A module of its own
// (no WebAssembly is compiled when it loads), so the file reader thread can
// lay out its ring, which a kernel works on, without loading the kernel.
export const FLETCHER4_RESERVED = 64;
