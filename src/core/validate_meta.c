/*
 * validate_meta — resource names and meshes as Kuma's meta_validator.go:
 * names are RFC 1123 subdomains, meshes keep the older, looser character set
 * (a Mesh created before 2.5 may contain '_').
 */
#include <string.h>

#include "core/resource.h"
#include "core/validate.h"
#include "core/validate_internal.h"
#include "core/verr.h"

static int backward_compat_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || *s == '-' || *s == '_' ||
              *s == '.'))
            return 0;
    return 1;
}

static void identifier(struct verr *ve, const char *field, const char *value, int strict)
{
    if (!value || !*value)
        verr_add(ve, field, "cannot be empty");
    else if (strlen(value) > 253)
        verr_add(ve, field, "value length must less or equal 253");
    else if (strict && !rfc1123_subdomain_ok(value))
        verr_add(ve, field,
                 "invalid characters. A lowercase RFC 1123 subdomain must consist of lower case "
                 "alphanumeric characters, '-' or '.', and must start and end with an "
                 "alphanumeric character");
    else if (!strict && !backward_compat_ok(value))
        verr_add(ve, field,
                 "invalid characters. Valid characters are numbers, lowercase latin letters and "
                 "'-', '_', '.' symbols.");
}

void validate_meta(const struct resource *r, struct verr *ve)
{
    if (!r)
        return;
    identifier(ve, "name", r->name, 1);
    if (r->type && r->type->scope == RES_SCOPE_MESH)
        identifier(ve, "mesh", r->mesh, 0);
}
