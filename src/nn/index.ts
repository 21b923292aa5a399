/** Neural-network building blocks over the tensor layer: modules, layers, init, losses, optimiser, state dicts. */
export * from './module.js';
export * from './init.js';
export * from './layers.js';
export * from './loss.js';
export * from './optim.js';
export * from './state.js';
