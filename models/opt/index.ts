// The OPT model family: configuration, parameters, forward graph.
export * from './config.js';
export * from './weights.js';
export * from './graph.js';
