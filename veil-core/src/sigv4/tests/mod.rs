mod chunked;
mod parse;
mod properties;
mod s3_examples;
mod support;
mod vectors;
