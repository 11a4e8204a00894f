#include "flamespan_abi.h"
