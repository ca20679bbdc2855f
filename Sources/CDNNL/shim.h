#ifndef CDE_CDNNL_SHIM_H
#define CDE_CDNNL_SHIM_H
// oneDNN (Debian libdnnl-dev): dnnl_sgemm, row-major single-precision GEMM; and the matmul
// primitive with bf16 operands and an f32 result (GEMM+BF16.swift), through the two helpers
// below, which keep oneDNN's fixed-size dims arrays and argument macros on the C side.
#include <oneapi/dnnl/dnnl.h>

/// The memory descriptors of a row-major matmul `C[m,n] (+)= op(A)[m,k] op(B)[k,n]`:
/// `A` bf16, stored `[m, lda]` (or `[k, lda]` when `trans_a`), `B` bf16, stored `[k, ldb]` (or
/// `[n, ldb]` when `trans_b`), `C` f32 `[m, ldc]`, and its scratchpad; and its primitive, whose
/// `sum` post-op adds to `C` instead of overwriting it when `accumulate`. The scratchpad is the
/// caller's (`dnnl_scratchpad_mode_user`, `*scratch_bytes` of it per call): oneDNN's own is one
/// buffer shared by every primitive, which calls on several threads at once would overwrite.
///
/// With `batch > 1` the matmul is batched: `batch` independent products, the `i`-th on
/// `A + i * stride_a`, `B + i * stride_b` and `C + i * stride_c` (elements), the attention
/// heads of one image (Attention+BF16.swift). With `batch == 1` the strides are unused and the
/// descriptors are two-dimensional.
static inline dnnl_status_t cde_matmul_bf16_create(dnnl_engine_t engine, int64_t batch, int64_t m, int64_t n,
                                                   int64_t k, int trans_a, int trans_b, int64_t lda,
                                                   int64_t ldb, int64_t ldc, int64_t stride_a, int64_t stride_b,
                                                   int64_t stride_c, int accumulate, dnnl_memory_desc_t mds[4],
                                                   size_t *scratch_bytes, dnnl_primitive_t *primitive) {
  int r = batch > 1 ? 3 : 2, o = r - 2;  // rank, and the index of the first matrix dimension
  dnnl_dims_t ad = {batch, m, k}, bd = {batch, k, n}, cd = {batch, m, n};
  dnnl_dims_t as = {stride_a, lda, 1}, ast = {stride_a, 1, lda}, bs = {stride_b, ldb, 1}, bst = {stride_b, 1, ldb},
              cs = {stride_c, ldc, 1};
  dnnl_status_t st;
  if ((st = dnnl_memory_desc_init_by_strides(&mds[0], r, ad + 1 - o, dnnl_bf16, (trans_a ? ast : as) + 1 - o)) != dnnl_success)
    return st;
  if ((st = dnnl_memory_desc_init_by_strides(&mds[1], r, bd + 1 - o, dnnl_bf16, (trans_b ? bst : bs) + 1 - o)) != dnnl_success)
    return st;
  if ((st = dnnl_memory_desc_init_by_strides(&mds[2], r, cd + 1 - o, dnnl_f32, cs + 1 - o)) != dnnl_success) return st;
  dnnl_matmul_desc_t md;
  if ((st = dnnl_matmul_desc_init(&md, &mds[0], &mds[1], NULL, &mds[2])) != dnnl_success) return st;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  if ((st = dnnl_primitive_attr_create(&attr)) != dnnl_success) return st;
  st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  if (st == dnnl_success && accumulate) {
    if ((st = dnnl_post_ops_create(&po)) == dnnl_success && (st = dnnl_post_ops_append_sum(po, 1.0f)) == dnnl_success)
      st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (po) dnnl_post_ops_destroy(po);
  }
  if (st != dnnl_success) { dnnl_primitive_attr_destroy(attr); return st; }
  dnnl_primitive_desc_t pd = NULL;
  st = dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL);
  dnnl_primitive_attr_destroy(attr);
  if (st != dnnl_success) return st;
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  if (sp) { mds[3] = *sp; *scratch_bytes = dnnl_memory_desc_get_size(sp); } else { *scratch_bytes = 0; }
  st = dnnl_primitive_create(primitive, pd);
  dnnl_primitive_desc_destroy(pd);
  return st;
}

/// Runs a primitive of `cde_matmul_bf16_create` on `a`, `b`, `c` with `scratch` (its
/// `scratch_bytes`, NULL when 0) on `stream`, which it waits for.
static inline dnnl_status_t cde_matmul_execute(dnnl_primitive_t primitive, dnnl_engine_t engine,
                                               dnnl_stream_t stream, const dnnl_memory_desc_t mds[4],
                                               const void *a, const void *b, void *c, void *scratch) {
  dnnl_memory_t mem[4] = {NULL, NULL, NULL, NULL};
  void *handles[4] = {(void *)a, (void *)b, c, scratch};
  int n = scratch ? 4 : 3;
  dnnl_status_t st = dnnl_success;
  for (int i = 0; i < n && st == dnnl_success; i++) st = dnnl_memory_create(&mem[i], &mds[i], engine, handles[i]);
  if (st == dnnl_success) {
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]},
                               {DNNL_ARG_SCRATCHPAD, mem[3]}};
    st = dnnl_primitive_execute(primitive, stream, n, args);
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
  }
  for (int i = 0; i < 4; i++) if (mem[i]) dnnl_memory_destroy(mem[i]);
  return st;
}
#endif
