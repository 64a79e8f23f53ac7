/* Temporary: replaced by the real validators (validators branch). */
#include "core/validate.h"
#include "core/resource.h"
#include "core/verr.h"
#define STUB(fn) void fn(const struct resource *r, struct verr *ve) { (void)r; (void)ve; }
STUB(validate_mesh)
STUB(validate_dataplane)
STUB(validate_external_service)
STUB(validate_secret)
STUB(validate_traffic_permission)
STUB(validate_traffic_route)
STUB(validate_traffic_log)
STUB(validate_traffic_trace)
STUB(validate_health_check)
STUB(validate_circuit_breaker)
STUB(validate_retry)
STUB(validate_timeout)
STUB(validate_fault_injection)
STUB(validate_rate_limit)
STUB(validate_mesh_gateway)
STUB(validate_target_ref_policy)
STUB(validate_meta)
STUB(validate_mesh_create)
void validate_mesh_update(const struct resource *o, const struct resource *r, struct verr *ve) { (void)o; (void)r; (void)ve; }
void validate_dataplane_constraints(const struct resource *m, const struct resource *d, struct verr *ve) { (void)m; (void)d; (void)ve; }
void resource_default(struct resource *r) { (void)r; }
