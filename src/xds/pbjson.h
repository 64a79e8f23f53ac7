/*
 * pbjson — any protobuf-c message as JSON in the shape of Envoy's config dump
 * (proto3 JSON mapping: lowerCamel names, enums by name, Duration "5s",
 * wrappers as bare values, Struct as objects, maps as objects, and Any
 * expanded with "@type" when the type is one kuma-cp generates). Used for
 * golden files and, later, the dataplane _config endpoint. Walks the
 * protobuf-c descriptors, so new message types need no code here.
 */
#ifndef XDS_PBJSON_H
#define XDS_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "xds/generator.h"

/* The message as JSON; caller owns the result. */
json_t *xds_pb_to_json(const ProtobufCMessage *m);

/* Decodes serialized bytes of the message named by a type URL (or a full
 * name) and renders it; NULL if the type is unknown or the bytes invalid. */
json_t *xds_pb_bytes_to_json(const char *type_url, const uint8_t *data, size_t len);

/* A proxy config as {"CDS": [..], "EDS": [..], "LDS": [..]} (empty types
 * left out), resources in name order. */
json_t *xds_proxy_config_to_json(const struct xds_proxy_config *c);

#endif
