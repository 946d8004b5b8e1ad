// Everything a LibTorch user of softsign needs: the op API and the optimizers.
#pragma once

#include <softsign/ops.h>
// Every header of softsign/optim and SOFTSIGN_ELEMENTWISE_OPTIMIZERS, the element-wise pairs:
// written by the build from those headers (Note [optimizer list] in CMakeLists.txt).
#include <softsign/optimizers.h>
