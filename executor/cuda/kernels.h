// The executor's own CUDA kernels: everything of a training step that is not a GEMM or a
// collective, one family per header and source file. This header includes every family; the
// contract all of them share (layouts, accumulation into fp32 main grads, asynchronous launches
// that throw ExecutorError on failure) is in kernel_types.h.
//   elementwise.h     casts, fills, additions, deterministic parameter initialisation
//   embedding.h       vocabulary-parallel word embedding and learned positions
//   normalization.h   LayerNorm and RMSNorm
//   bias_residual.h   bias add, bias gradient, bias + residual
//   activation.h      bias-GeLU and SwiGLU
//   rotary.h          rotary position embeddings
//   causal_softmax.h  the attention core's masked softmax
//   cross_entropy.h   cross-entropy over a vocabulary split across tensor-parallel ranks
//   sum_squares.h     the sum of squares behind the global gradient norm
//   adamw.h           the AdamW step on fp32 master weights
// The family sources share kernel_helpers.cuh (launch shapes, vector loads, row reductions) and
// column_sum.cuh (column sums); those are for the kernels, not for callers.
#pragma once

#include "executor/cuda/activation.h"
#include "executor/cuda/adamw.h"
#include "executor/cuda/bias_residual.h"
#include "executor/cuda/causal_softmax.h"
#include "executor/cuda/cross_entropy.h"
#include "executor/cuda/elementwise.h"
#include "executor/cuda/embedding.h"
#include "executor/cuda/kernel_types.h"
#include "executor/cuda/normalization.h"
#include "executor/cuda/rotary.h"
#include "executor/cuda/sum_squares.h"
