"""LiteRT and TFLite adapters: conversion, the interpreter, timing and fidelity
measurement, frozen graphs, and rewrites of ``.tflite`` flatbuffers.

Above ``compressor.core`` and ``compressor.planning``.
"""
