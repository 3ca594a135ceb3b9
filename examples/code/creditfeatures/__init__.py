"""An example training-code package: a derived feature and a ColumnTransformer (docs/bring-your-own-code.md)."""
