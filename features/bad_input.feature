Feature: Refusing bad input
  As the keeper of the stock records
  I want an order or a batch that can never be right refused with a clear error
  So that a typo neither changes the stock nor sends anyone a mail

  @book
  Scenario: An order for an unknown sku is refused and commits nothing
    Given a batch "b1" of 100 "AREALSKU" in the warehouse
    When I allocate order "o1" of 10 "NONEXISTENTSKU"
    Then it fails with an invalid sku
    And I am told "invalid sku NONEXISTENTSKU"
    And there is no product "NONEXISTENTSKU"
    And nothing changed in the store
    And the bus handled no events
    And no mail was sent

  @beyond
  Scenario Outline: An order line that can never be allocated is refused: <case>
    Given a batch "b1" of 10 "LAMP" in the warehouse
    And order "held" of 2 "LAMP" has been allocated
    When I allocate order "<order>" of <qty> "<sku>"
    Then it fails with <kind>
    And I am told "<message>"
    And nothing changed in the store
    And batch "b1" has 8 available
    And the bus handled no events
    And no mail was sent

    Examples:
      | case                       | order | qty        | sku  | kind                  | message                                     |
      | quantity zero              | o1    | 0          | LAMP | an invalid order line | qty must be between 1 and 1000000000, got 0 |
      | negative quantity          | o1    | -350       | LAMP | an invalid order line | got -350                                    |
      | quantity above the maximum | o1    | 1000000001 | LAMP | an invalid order line | got 1000000001                              |
      | empty sku                  | o1    | 1          |      | an invalid order line | empty sku                                   |
      | empty order id             |       | 1          | LAMP | an invalid order line | empty order id                              |
      | same order, other quantity | held  | 3          | LAMP | an order conflict     | holds 2 in batch b1, asked for 3            |

  @beyond
  Scenario Outline: A batch that cannot be stored is refused: <case>
    Given a batch "b1" of 10 "LAMP" in the warehouse
    When I add a batch "<ref>" of <qty> "<sku>" in the warehouse
    Then it fails with <kind>
    And I am told "<message>"
    And nothing changed in the store

    Examples:
      | case                              | ref | qty        | sku   | kind              | message                                      |
      | empty reference                   |     | 10         | LAMP  | an invalid batch  | empty reference                              |
      | empty sku                         | b2  | 10         |       | an invalid batch  | empty sku                                    |
      | negative quantity                 | b2  | -1         | LAMP  | an invalid batch  | qty must be between 0 and 1000000000, got -1 |
      | quantity above the maximum        | b2  | 1000000001 | LAMP  | an invalid batch  | got 1000000001                               |
      | reference of the same product     | b1  | 5          | LAMP  | a duplicate batch | duplicate batch reference                    |
      | reference of another product      | b1  | 5          | TABLE | a duplicate batch | held by LAMP                                 |
