// The host execution layer: runs the CUDA kernel bodies of csrc/ops/cuda/*.cuh on the CPU
// with the semantics they rely on, so that CI (no GPU) executes the very source nvcc
// compiles. csrc/ops/cuda/device_api.cuh maps its thin layer onto this header when
// __CUDACC__ is not defined.
//
// Note [host execution layer]
// - A launch runs its blocks one after another; the threads of a block are fibers
//   (ucontext) on one OS thread, scheduled round-robin. A fiber runs until it waits.
// - sync_block(): a thread waits until every thread of its block has arrived; the last
//   one to arrive releases them. A thread that returns while others wait, or threads that
//   wait at different barriers, is a deadlock: the launch throws and says where.
// - Warp collectives (match_any, ballot) take all 32 lanes: each lane deposits its value
//   and waits for the others, exactly like a full-mask *_sync primitive on a converged
//   warp. A lane missing from a collective is a deadlock, not a silent wrong answer.
// - Shared memory: a fresh arena per block, filled with a poison byte (CUDA leaves it
//   uninitialized), and poisoned for AddressSanitizer beyond what the block declared.
// - Atomics: plain read-modify-writes (one OS thread), counted. Lanes of a warp are taken
//   to issue their k-th atomic since their last warp collective together, as a converged
//   warp does; atomics of one such step that hit one address are counted as colliding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

// The CUDA C++ keywords the shared kernel headers use, as plain C++.
#define __device__
#define __host__
#define __forceinline__ inline

namespace softsign::cuda_host {

// What the launches since the last reset did; read by the tests.
struct Counters {
  int64_t launches = 0;
  int64_t blocks = 0;
  int64_t block_barriers = 0;     // completed sync_block() barriers
  int64_t warp_collectives = 0;   // completed match_any/ballot calls (per warp)
  int64_t atomics = 0;            // atomic operations
  int64_t colliding_atomics = 0;  // atomics that hit an address another lane hit in step
  int64_t elements_read = 0;      // reported by the kernels through note_reads()
};
Counters& counters();
void reset_counters();

// Runs body() once per thread of `grid` blocks of `block` threads. Rethrows the first
// exception a thread threw; throws std::runtime_error on a deadlock.
void launch(int grid, int block, const std::function<void()>& body);

// Queries and primitives for the running thread (only valid inside launch()).
int thread_index();
int block_index();
int block_dim();
void sync_block();
unsigned match_any(uint64_t value);
unsigned ballot(bool predicate);
void* shared_bytes(std::size_t size, std::size_t align);
void note_atomic(const void* address);
void note_reads(int64_t elements);

}  // namespace softsign::cuda_host
