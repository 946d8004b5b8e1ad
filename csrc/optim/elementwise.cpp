// The element-wise optimizers' code, compiled once per rule from the optimizer list (Note
// [optimizer list] in CMakeLists.txt; their headers declare it extern).
#include "elementwise_impl.h"
#include "scheduled_optimizer_impl.h"
#include "softsign/softsign.h"

namespace softsign::optim {

#define SOFTSIGN_INSTANTIATE(Soft, Plain, Traits) \
  template struct ElementwiseRule<Traits>;        \
  template class ScheduledOptimizer<ElementwiseRule<Traits>>;
SOFTSIGN_ELEMENTWISE_OPTIMIZERS(SOFTSIGN_INSTANTIATE)
#undef SOFTSIGN_INSTANTIATE

}  // namespace softsign::optim
