// The fuzz run's knobs: FUZZ_SEED and FUZZ_ITERATIONS from the environment (fixed in CI), and the server's limits
// the oracle must know (ws's defaults as the chat app's Server uses them).
export const SEED = Number(process.env.FUZZ_SEED ?? 20240917);
export const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1000);
/** Hostile streams in flight at once. */
export const CONCURRENCY = 8;
export const ROOM_PATH = '/ws/chat/fuzz/';
export const MAX_PAYLOAD = 1024 * 1024;
export const MAX_FRAGMENTS = 16 * 1024;
