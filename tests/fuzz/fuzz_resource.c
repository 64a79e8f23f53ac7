/*
 * libFuzzer harness for the resource parser: text → documents (codec) →
 * resources (both forms) → defaulting and validation → JSON and YAML output →
 * parse again. Any crash, leak or sanitizer report is a bug; so is YAML
 * output that does not read back as the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/resource.h"
#include "core/validate.h"
#include "core/verr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *docs = NULL;
    struct err e;
    if (codec_parse((const char *)data, size, &docs, &e) < 0)
        return 0;
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        char *yaml = codec_yaml_dump(doc, 1);
        if (yaml) {
            json_t *back = NULL;
            if (codec_parse_one(yaml, strlen(yaml), &back, &e) < 0 || !json_equal(doc, back))
                abort();
            json_decref(back);
            free(yaml);
        }
        struct resource *r = NULL;
        if (resource_from_json(doc, &r, &e) < 0)
            continue;
        resource_default(r);
        struct verr ve = {0};
        validate_meta(r, &ve);
        if (r->type->validate)
            r->type->validate(r, &ve);
        if (r->type == &TYPE_MESH) {
            validate_mesh_create(r, &ve);
            validate_mesh_update(r, r, &ve);
        }
        char *joined = verr_join(&ve);
        free(joined);
        verr_free(&ve);
        json_t *u = resource_to_json(r, RES_FORM_UNIVERSAL);
        json_t *k = resource_to_json(r, RES_FORM_K8S);
        struct resource *r2 = NULL;
        if (resource_from_json(k, &r2, &e) < 0)
            abort();
        resource_free(r2);
        json_decref(u);
        json_decref(k);
        resource_free(r);
    }
    json_decref(docs);
    return 0;
}
