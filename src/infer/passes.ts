/**
 * One sliding window for every engine. The window, blending and mirroring code is written once, as
 * generators that yield each forward pass they need (a batch of windows) and receive its logits;
 * a driver answers them. The synchronous driver serves libtorch networks (the whole prediction
 * stays inside one noGrad scope, as before); the asynchronous one serves engines whose run returns
 * a Promise (onnxruntime-node). No scope is ever open across a yield: the generators dispose what
 * they create themselves, so the tensors they leave are the result and nothing else.
 */
import { scope, type Tensor } from '../tensor/index.js';

/** A computation that asks for forward passes `R` and returns `T`. */
export type PassGenerator<R, T> = Generator<R, T, Tensor>;

/** Run `passes`, answering each request with `answer` (each answer in its own scope). */
export function drivePasses<R, T>(passes: PassGenerator<R, T>, answer: (request: R) => Tensor): T {
  let step = passes.next();
  while (step.done !== true) {
    let output: Tensor;
    try {
      const request = step.value;
      output = scope(() => answer(request));
    } catch (error) {
      // Let the generator release what it holds (its finally blocks), then fail.
      passes.return(undefined as T);
      throw error;
    }
    step = passes.next(output);
  }
  return step.value;
}

/** Run `passes`, awaiting each answer. Call it outside any scope. */
export async function drivePassesAsync<R, T>(passes: PassGenerator<R, T>, answer: (request: R) => Tensor | Promise<Tensor>): Promise<T> {
  let step = passes.next();
  while (step.done !== true) {
    let output: Tensor;
    try {
      output = await answer(step.value);
    } catch (error) {
      passes.return(undefined as T);
      throw error;
    }
    step = passes.next(output);
  }
  return step.value;
}
