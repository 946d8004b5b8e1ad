// Everything a LibTorch user of softsign needs: the op API and the optimizers.
#pragma once

#include <softsign/ops.h>
#include <softsign/optim/lion.h>
#include <softsign/optim/soft_muon.h>
#include <softsign/optim/soft_signum.h>

// Note [optimizer list]: every element-wise optimizer pair, X(Soft, Plain, Traits). The
// library compiles each Traits' rule once from this list (csrc/optim/elementwise.cpp) and
// the bindings bind both classes (csrc/python/bindings.cpp), so an optimizer's header and
// its line here are all the C++ it needs.
#define SOFTSIGN_ELEMENTWISE_OPTIMIZERS(X) \
  X(SoftSignum, Signum, SignumTraits)      \
  X(SoftLion, Lion, LionTraits)
