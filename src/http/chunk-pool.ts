// The chunk pool moved to src/loop (the file sender there uses it for both faces); this name
// stays so existing imports keep working.
export * from '../loop/chunk-pool.js';
